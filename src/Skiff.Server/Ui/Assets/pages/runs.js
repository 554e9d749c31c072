// Runs, newest first, filtered by location, job and status, a page at a time.
import { api, session } from '../app.js';
import { h, when, badge, duration, enc } from '../dom.js';

const pageSize = 25;

export async function render(main, _, query) {
  const page = Math.min(10_000, Math.max(0, Math.floor(Number(query.get('page') ?? 0) || 0)));
  // A token limited to some locations may list runs only by location: the first of them stands in for "any".
  const scoped = session.locations.length > 0;
  const filter = { location: query.get('location') || (scoped ? session.locations[0] : ''), job: query.get('job') ?? '', status: query.get('status') ?? '' };
  const search = new URLSearchParams({ ...filter, offset: String(page * pageSize), limit: String(pageSize) });
  const [locations, found] = await Promise.all([api('/locations'), api(`/runs/search?${search}`)]);
  const link = (changes) => `#/runs?${new URLSearchParams({ ...filter, page: String(page), ...changes })}`;
  const select = (name, options, any = true) => h('select', { name, id: `filter-${name}` },
    any ? h('option', { value: '' }, `any ${name}`) : null, options.map((o) => h('option', { value: o, selected: filter[name] === o }, o)));
  const form = h('form', { class: 'filters', id: 'run-filters' },
    select('location', scoped ? session.locations : locations.map((l) => l.location), !scoped),
    h('input', { name: 'job', id: 'filter-job', placeholder: 'job', value: filter.job }),
    select('status', ['queued', 'running', 'succeeded', 'failed', 'canceled']),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    location.hash = `#/runs?${new URLSearchParams({ ...data, page: '0' })}`;
  });
  main.append(h('h1', {}, 'Runs'), form);
  main.append(found.runs.length === 0 ? h('p', { class: 'muted' }, page > 0 ? 'No runs on this page.' : 'No runs match.')
    : h('div', { class: 'scroll' }, h('table', { id: 'runs' },
      h('thead', {}, h('tr', {}, ['Run', 'Location', 'Job', 'Status', 'Started', 'Queue wait', 'Took'].map((t) => h('th', {}, t)))),
      h('tbody', {}, found.runs.map((r) => h('tr', { 'data-run': r.run },
        h('td', {}, h('a', { href: `#/runs/${enc(r.run)}` }, h('code', {}, r.run))),
        h('td', {}, h('a', { href: `#/locations/${enc(r.location)}` }, r.location)), h('td', {}, r.job), h('td', {}, badge(r.status)),
        h('td', {}, r.status === 'queued' ? '–' : when(r.started_at)),
        h('td', {}, r.queue_wait_ms != null ? duration(r.queue_wait_ms) : r.status === 'queued' ? 'waiting' : '–'),
        h('td', {}, r.finished_at ? duration(Date.parse(r.finished_at) - Date.parse(r.started_at)) : '…')))))),
  // Drawn also past the end, so there is always a way back.
  h('nav', { class: 'pager' },
    page > 0 ? h('a', { href: link({ page: String(page - 1) }) }, '← newer') : h('span', {}),
    h('span', { class: 'muted' }, `page ${page + 1}`),
    found.more ? h('a', { href: link({ page: String(page + 1) }) }, 'older →') : h('span', {})));
}
