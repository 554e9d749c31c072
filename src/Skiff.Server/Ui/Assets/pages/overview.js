// Every location: health, live release, its last deploy, and its runs of the last 24 hours by status.
import { api } from '../app.js';
import { h, clear, when, digest, badge, enc } from '../dom.js';

// A tab kept open stays current: the page reads again every 10 s.
const refreshMs = 10_000;

export async function render(main) {
  const view = h('div', {});
  main.append(h('h1', {}, 'Overview'), view);
  await draw(view);
  const timer = setInterval(() => draw(view).catch(() => {}), refreshMs);
  return () => clearInterval(timer);
}

async function draw(view) {
  const [locations, overview] = await Promise.all([api('/locations'), api('/overview')]);
  const extra = new Map(overview.locations.map((l) => [l.location, l]));
  clear(view);
  if (locations.length === 0) {
    view.append(h('p', { class: 'muted' }, 'No locations yet: `skiff deploy PATH --location NAME` creates one.'));
    return;
  }
  const rows = locations.map((location) => {
    const more = extra.get(location.location) ?? {};
    const last = more.last_deployment;
    const runs = Object.entries(more.runs_24h ?? {});
    return h('tr', { 'data-location': location.location },
      h('td', {}, h('a', { href: `#/locations/${enc(location.location)}` }, location.location)),
      h('td', {}, badge(location.health)),
      h('td', {}, digest(location.release), ' ', h('span', { class: 'muted' }, `${location.jobs} job${location.jobs === 1 ? '' : 's'}`)),
      h('td', {}, last ? [when(last.created_at), ' ', h('span', { class: 'muted' }, `${last.path} by ${last.who}`), ' ', badge(last.outcome)] : '–'),
      h('td', { class: 'chips' }, runs.length === 0 ? h('span', { class: 'muted' }, 'none')
        : runs.map(([status, count]) => h('a', { class: `badge ${status}`, href: `#/runs?location=${enc(location.location)}&status=${status}` }, `${count} ${status}`))));
  });
  view.append(h('div', { class: 'scroll' }, h('table', { id: 'locations' },
    h('thead', {}, h('tr', {}, ['Location', 'Health', 'Live release', 'Last deploy', 'Runs, last 24 h'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows))));
}
