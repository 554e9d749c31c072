// One location: its deploy history as a timeline with per-stage bars, rollback, and picking two deployments to diff.
import { api, may, session } from '../app.js';
import { h, when, digest, badge, bytes, duration, stages, enc } from '../dom.js';

export async function render(main, [name]) {
  const [locations, history] = await Promise.all([api('/locations'), api(`/locations/${enc(name)}/deployments?limit=100`)]);
  const location = locations.find((l) => l.location === name);
  if (!location) throw new Error(`there is no location '${name}'.`);
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  main.append(
    h('h1', {}, name, ' ', badge(location.health), location.experimental ? [' ', badge('experimental')] : null),
    h('p', {}, 'Live release ', digest(location.release),
      location.experimental ? h('span', { class: 'muted' }, ' (with experimental packages)') : null,
      location.refuses_experimental ? h('span', { class: 'muted' }, ' · refuses experimental releases') : null, ' · ',
      h('a', { href: `#/locations/${enc(name)}/jobs` }, 'Jobs'), ' · ',
      h('a', { href: `#/runs?location=${enc(name)}` }, 'Runs')),
    message);

  // Bars share one scale, so a slow deploy looks slow beside a fast one.
  // "total" is the whole deploy as the CLI timed it, not a stage: it names the row, the stages make the bar.
  const steps = (d) => Object.keys(d.timings_ms ?? {}).filter((s) => s !== 'total');
  const total = (d) => d.timings_ms?.total ?? steps(d).reduce((a, s) => a + d.timings_ms[s], 0);
  const longest = Math.max(1, ...history.map(total));
  const pick = { from: history[1]?.deployment, to: history[0]?.deployment };
  const diffLink = h('a', { class: 'button', id: 'open-diff' }, 'Compare releases');
  const updateDiff = () => { diffLink.href = `#/locations/${enc(name)}/diff?from=${enc(pick.from ?? '')}&to=${enc(pick.to ?? '')}`; };
  updateDiff();

  const items = history.map((d) => {
    const names = [...stages.filter((s) => s in d.timings_ms), ...steps(d).filter((s) => !stages.includes(s))];
    const bar = h('div', { class: 'stages', title: names.map((s) => `${s} ${duration(d.timings_ms[s])}`).join(', ') },
      names.map((s) => h('span', { class: `stage ${s}`, style: { width: `${(100 * d.timings_ms[s]) / longest}%` } }, h('span', {}, `${s} ${duration(d.timings_ms[s])}`))));
    const radio = (side) => h('input', {
      type: 'radio', name: side, value: d.deployment, 'aria-label': `${side} ${d.deployment}`, checked: pick[side] === d.deployment,
      onchange: () => { pick[side] = d.deployment; updateDiff(); },
    });
    const canRollBack = d.outcome === 'live' && d.release !== location.release && may('deploy', name);
    return h('li', { class: `deployment ${d.outcome}${d.experimental ? ' experimental' : ''}`, 'data-deployment': d.deployment },
      h('div', { class: 'head' },
        badge(d.live ? 'serving' : d.outcome), ' ',
        // skiff deploy --exp: packages outside the environment, for this release only (docs/build.md).
        d.experimental ? [h('span', { class: 'badge experimental', title: `experimental: ${d.experimental_packages.join(' ')}` }, 'experimental'), ' '] : null,
        h('strong', {}, d.path), ' ', when(d.created_at),
        h('span', { class: 'muted' }, ` by ${d.who}`),
        d.commit ? [' · ', h('code', {}, d.commit.slice(0, 10)), d.dirty ? h('span', { class: 'muted' }, ' (dirty)') : null] : null,
        ` · ${duration(total(d))} · `, `${bytes(d.uploaded.bytes)} in ${d.uploaded.blobs} blob${d.uploaded.blobs === 1 ? '' : 's'}`,
        ' · release ', digest(d.release),
        d.rollback_of ? h('span', { class: 'muted' }, ` · rollback to ${d.rollback_of}`) : null),
      bar,
      d.error ? h('p', { class: 'error' }, d.error) : null,
      h('div', { class: 'actions' },
        h('label', {}, radio('from'), ' from'), h('label', {}, radio('to'), ' to'),
        canRollBack ? h('button', { type: 'button', class: 'rollback', onclick: () => rollBack(d) }, 'Roll back to this') : null));
  });

  async function rollBack(d) {
    if (!confirm(`Put release ${d.release.slice(7, 19)} of ${d.deployment} back on ${name}?`)) return;
    message.hidden = true;
    try {
      await api(`/locations/${enc(name)}/rollback`, { method: 'POST', body: { deployment: d.deployment, who: `${session.token} (web UI)` } });
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } catch (error) { message.textContent = error.message; message.hidden = false; }
  }

  main.append(h('section', {}, h('div', { class: 'section-head' }, h('h2', {}, 'Deployments'), history.length > 1 ? diffLink : null),
    h('ol', { class: 'timeline', id: 'deployments' }, items)));
}
