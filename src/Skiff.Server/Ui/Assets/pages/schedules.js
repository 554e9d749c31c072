// The cron schedules of every location's live release (docs/schedules.md): when each fires next, in UTC and in
// its own time zone, what its last tick did, and pause or resume for a token that may start runs there.
import { api, may, session } from '../app.js';
import { h, clear, when, badge, enc } from '../dom.js';

export async function render(main, _, query) {
  // A token limited to some locations lists one of them at a time, as the run list does.
  const scoped = session.locations.length > 0;
  const location = query.get('location') || (scoped ? session.locations[0] : '');
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const view = h('div', {});
  main.append(h('h1', {}, 'Schedules', location ? [' on ', h('a', { href: `#/locations/${enc(location)}` }, location)] : null), message, view);
  await draw(view, message, location);
}

async function draw(view, message, location) {
  const schedules = await api(`/schedules${location ? `?location=${enc(location)}` : ''}`);
  clear(view);
  if (schedules.length === 0) {
    view.append(h('p', { class: 'muted' }, 'No live release declares a schedule: `.Schedule("0 2 * * *", timeZone: "Europe/Berlin")` on a job does.'));
    return;
  }
  view.append(h('div', { class: 'scroll' }, h('table', { id: 'schedules' },
    h('thead', {}, h('tr', {}, ['Location', 'Job', 'Cron', 'State', 'Next', 'Last tick', 'Missed ticks', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, schedules.map((s) => {
      // Pausing is per job: one button on the first of a job's schedules, also where that one is invalid but paused.
      const first = schedules.find((o) => o.location === s.location && o.job === s.job) === s;
      const action = first && may('run', s.location) && (s.state !== 'invalid' || paused(schedules, s))
        ? h('button', { type: 'button', class: 'rollback', 'data-action': s.state === 'paused' ? 'resume' : 'pause' }, s.state === 'paused' ? 'Resume' : 'Pause')
        : null;
      if (action) action.dataset.action = paused(schedules, s) ? 'resume' : 'pause';
      if (action) action.textContent = paused(schedules, s) ? 'Resume' : 'Pause';
      action?.addEventListener('click', async () => {
        action.disabled = true;
        try {
          await api(`/schedules/${enc(s.location)}/${enc(s.job)}/${action.dataset.action}`, { method: 'POST' });
          await draw(view, message, location);
        } catch (error) { message.textContent = error.message; message.hidden = false; action.disabled = false; }
      });
      const tick = s.last_tick;
      return h('tr', { 'data-schedule': `${s.location}/${s.job}/${s.cron}`, 'data-zone': s.time_zone },
        h('td', {}, h('a', { href: `#/locations/${enc(s.location)}` }, s.location)),
        h('td', {}, h('a', { href: `#/locations/${enc(s.location)}/jobs` }, s.job),
          Object.keys(s.params ?? {}).length ? [h('br', {}), h('code', {}, JSON.stringify(s.params))] : null),
        h('td', {}, h('code', {}, s.cron), h('br', {}), h('span', { class: 'muted' }, s.time_zone)),
        h('td', {}, badge(s.state), s.problem ? h('div', { class: 'error' }, s.problem) : null),
        h('td', { class: 'next' }, s.next_at ? [when(s.next_at), h('br', {}), h('span', { class: 'muted', title: s.next_at }, local(s.next_at_local))] : '–'),
        h('td', {}, tick ? [when(tick.at), ' ', tick.run ? h('a', { href: `#/runs/${enc(tick.run)}` }, tick.run) : null,
          tick.note ? h('div', { class: 'muted' }, tick.note) : null] : h('span', { class: 'muted' }, 'none yet')),
        h('td', {}, s.missed === 'run_once' ? 'run once' : 'skip'),
        h('td', {}, action));
    })))));
}

/** Whether the job of schedule `s` is paused (its schedules are paused together). */
function paused(schedules, s) {
  return schedules.some((o) => o.location === s.location && o.job === s.job && o.state === 'paused');
}

/** The moment as the schedule's own zone reads it: "2026-11-30 02:00 +01:00". */
function local(iso) {
  if (!iso) return '';
  const match = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  return match ? `${match[1]} ${match[2]} ${match[3] === 'Z' ? 'UTC' : match[3]}` : iso;
}
