// The agents by state, then every location: health, live release, its last deploy, and its runs of the last
// 24 hours by status.
import { api, every } from '../app.js';
import { h, clear, when, digest, badge, enc } from '../dom.js';

// A tab kept open stays current: the page reads again every 10 s.
const refreshMs = 10_000;

export async function render(main) {
  const view = h('div', {});
  main.append(h('h1', {}, 'Overview'), view);
  await draw(view);
  return every(refreshMs, () => draw(view));
}

async function draw(view) {
  const [locations, overview, agents] = await Promise.all([api('/locations'), api('/overview'), api('/agents')]);
  const extra = new Map(overview.locations.map((l) => [l.location, l]));
  clear(view);
  view.append(fleet(agents));
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

/** One line for the fleet: how many agents are in each state, each linking to the Agents page. */
function fleet(agents) {
  const states = new Map();
  for (const agent of agents) states.set(agent.state, (states.get(agent.state) ?? 0) + 1);
  const running = agents.reduce((sum, a) => sum + (a.runs ?? 0), 0);
  return h('p', { id: 'fleet', class: 'chips' }, h('a', { href: '#/agents' }, 'Agents'), ': ',
    agents.length === 0 ? h('span', { class: 'muted' }, 'none connected yet')
      : [...states].map(([state, count]) => h('a', { class: `badge ${state}`, href: '#/agents' }, `${count} ${state}`)),
    agents.length ? h('span', { class: 'muted' }, ` · ${running} run${running === 1 ? '' : 's'} going`) : null);
}
