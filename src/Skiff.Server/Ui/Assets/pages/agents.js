// Every agent the platform knows: state, isolation, labels, capacity and load, the locations it hosts, its
// runs, and the environments it holds cached (what makes a deploy there take the fast path). The same
// GET /agents `skiff agents` reads; a tab kept open reads again every 10 s.
import { api, every, session } from '../app.js';
import { h, clear, when, digest, badge, bytes, enc } from '../dom.js';

const refreshMs = 10_000;

export async function render(main) {
  const view = h('div', {});
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  main.append(h('h1', {}, 'Agents'), message, view);
  await draw(view, message);
  return every(refreshMs, () => draw(view, message));
}

async function draw(view, message) {
  const agents = await api('/agents');
  clear(view);
  if (agents.length === 0) {
    view.append(h('p', { class: 'muted' }, 'No agent has connected yet: `skiff up` starts one beside the server, `skiff agent --server URL` joins one from another host.'));
    return;
  }
  const admin = session.role === 'admin' && session.locations.length === 0;
  view.append(h('div', { class: 'agents' }, agents.map((agent) => card(agent, admin, view, message))));
}

function card(agent, admin, view, message) {
  const capacity = agent.capacity ?? {};
  const load = agent.load ?? {};
  const isolation = capacity.isolation;
  const environments = load.environments ?? [];
  const labels = Object.entries(agent.labels ?? {});
  const draining = agent.state === 'draining' || agent.state === 'drained';
  const action = admin && agent.state !== 'gone'
    ? h('button', { type: 'button', class: 'rollback', 'data-action': draining ? 'undrain' : 'drain' }, draining ? 'Take locations again' : 'Drain')
    : null;
  action?.addEventListener('click', async () => {
    if (!draining && !confirm(`Drain ${agent.name}? Its locations move to other agents, and it takes no new ones.`)) return;
    action.disabled = true;
    try {
      await api(`/agents/${enc(agent.name)}/${draining ? 'undrain' : 'drain'}`, { method: 'POST' });
      await draw(view, message);
    } catch (error) { message.textContent = error.message; message.hidden = false; action.disabled = false; }
  });
  return h('section', { class: 'card agent', 'data-agent': agent.name },
    h('div', { class: 'section-head' }, h('h2', {}, agent.name, ' ', badge(agent.state)), action),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Isolation'), h('dd', { 'data-field': 'isolation' }, isolation
        ? [isolation.sandboxed ? badge('sandboxed') : h('span', { class: 'badge failed' }, 'no sandbox'), ' ',
          isolation.cgroups ? badge('cgroups') : h('span', { class: 'badge restarting' }, 'heap limit only'), ' ',
          h('span', { class: 'muted' }, isolation.description ?? '')]
        : '–'),
      h('dt', {}, 'Labels'), h('dd', { class: 'chips' }, labels.length ? labels.map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`)) : h('span', { class: 'muted' }, 'none')),
      h('dt', {}, 'CPU'), h('dd', {}, `${capacity.cpus ?? '–'} CPUs`, typeof load.cpu_load === 'number' ? `, load ${load.cpu_load.toFixed(2)}` : '',
        meter(load.cpu_load, capacity.cpus)),
      h('dt', {}, 'Memory'), h('dd', {}, `${bytes(load.memory_used_bytes)} of ${bytes(capacity.memory_bytes)} in use`, meter(load.memory_used_bytes, capacity.memory_bytes)),
      h('dt', {}, 'Disk'), h('dd', {}, `${bytes(load.disk_free_bytes)} free of ${bytes(capacity.disk_bytes)}`),
      h('dt', {}, 'Locations'), h('dd', { class: 'chips', 'data-field': 'locations' }, agent.locations.length
        ? agent.locations.map((l) => h('a', { class: 'tag', href: `#/locations/${enc(l)}` }, l)) : h('span', { class: 'muted' }, 'none')),
      h('dt', {}, 'Runs'), h('dd', {}, h('a', { href: '#/runs?status=running' }, `${agent.runs} running`)),
      h('dt', {}, 'Cached'), h('dd', { 'data-field': 'environments' }, `${environments.length} environment${environments.length === 1 ? '' : 's'} live, ${load.cached_folders ?? 0} folders cached `,
        environments.map((e) => [digest(e), ' '])),
      h('dt', {}, 'Seen'), h('dd', {}, agent.connected ? `connected to ${agent.server ?? 'this server'}` : 'not connected', ' · last heard ', when(agent.seen_at))));
}

/** A thin bar for a used/total pair; nothing when either is unknown. */
function meter(used, total) {
  if (used === undefined || used === null || !total) return null;
  return h('meter', { min: 0, max: total, value: Math.min(used, total), high: total * 0.85, class: 'usage' });
}
