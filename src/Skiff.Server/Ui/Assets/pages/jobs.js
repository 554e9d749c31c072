// The live release's jobs: ops as a DAG, parameters with types, defaults and descriptions, tags; then the tasks it serves as a pool.
import { api, may } from '../app.js';
import { h, svg, digest, enc, duration } from '../dom.js';

export async function render(main, [name]) {
  const live = await api(`/locations/${enc(name)}/jobs`);
  main.append(
    h('p', {}, h('a', { href: `#/locations/${enc(name)}` }, `← ${name}`)),
    h('h1', {}, `Jobs on ${name}`),
    h('p', { class: 'muted' }, 'Defined by the live release ', digest(live.release)));
  for (const job of live.jobs) {
    const parameters = job.parameters ?? [];
    const rows = parameters.map((p) => h('tr', {},
      h('td', {}, h('code', {}, p.name), p.required ? h('span', { class: 'muted' }, ' required') : null),
      h('td', {}, p.type),
      h('td', {}, p.required ? '–' : h('code', {}, JSON.stringify(p.default))),
      h('td', {}, p.description ?? '')));
    const table = parameters.length === 0 ? h('p', { class: 'muted' }, 'No parameters.')
      : h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Parameter', 'Type', 'Default', 'Description'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows)));
    main.append(h('section', { class: 'card job', 'data-job': job.name },
      h('div', { class: 'section-head' }, h('h2', {}, job.name),
        may('run', name) ? h('a', { class: 'button', href: `#/locations/${enc(name)}/jobs/${enc(job.name)}/launch` }, 'Launch') : null),
      job.description ? h('p', {}, job.description) : null,
      (job.tags ?? []).length ? h('p', { class: 'chips' }, job.tags.map((t) => h('span', { class: 'tag' }, t))) : null,
      (job.schedules ?? []).length ? h('p', { class: 'schedules' }, h('a', { href: `#/schedules?location=${enc(name)}` }, 'Scheduled'), ': ',
        job.schedules.map((s, i) => [i ? ', ' : '', h('code', {}, s.cron), ` ${s.time_zone}`])) : null,
      h('div', { class: 'scroll' }, dag(job.ops ?? [])),
      table));
  }
  for (const task of live.tasks ?? []) {
    const retry = task.retry ?? {};
    main.append(h('section', { class: 'card task', 'data-task': task.name },
      h('h2', {}, `Task ${task.name}`),
      task.description ? h('p', {}, task.description) : null,
      h('p', {}, h('code', {}, task.input_type), ' → ', h('code', {}, task.output_type),
        h('span', { class: 'muted' }, retry.max_attempts > 1
          ? ` · up to ${retry.max_attempts} attempts, the first retry after ${duration(retry.initial_delay_ms)}` : ' · no retries')),
      h('details', {}, h('summary', {}, 'Input and output schemas'),
        h('pre', {}, JSON.stringify({ input: task.input_schema, output: task.output_schema }, null, 2)))));
  }
}

let dagCount = 0;

/** Ops in columns by their longest chain of dependencies, edges from each dependency to its dependent. */
export function dag(ops) {
  const arrow = `arrow-${++dagCount}`;
  const depth = new Map();
  const byName = new Map(ops.map((o) => [o.name, o]));
  const level = (op, seen = new Set()) => {
    if (depth.has(op.name)) return depth.get(op.name);
    if (seen.has(op.name)) return 0;
    seen.add(op.name);
    const d = Math.max(-1, ...(op.depends_on ?? []).map((n) => (byName.has(n) ? level(byName.get(n), seen) : -1))) + 1;
    depth.set(op.name, d);
    return d;
  };
  ops.forEach((op) => level(op));
  const columns = [];
  for (const op of ops) (columns[depth.get(op.name)] ??= []).push(op);
  const width = 140; const height = 34; const gapX = 50; const gapY = 16;
  const place = new Map();
  columns.forEach((column, x) => column.forEach((op, y) => place.set(op.name, { x: 8 + x * (width + gapX), y: 8 + y * (height + gapY) })));
  const total = { w: 16 + columns.length * (width + gapX) - gapX, h: 16 + Math.max(1, ...columns.map((c) => c.length)) * (height + gapY) - gapY };
  const edges = ops.flatMap((op) => (op.depends_on ?? []).filter((n) => place.has(n)).map((n) => {
    const a = place.get(n); const b = place.get(op.name);
    const x1 = a.x + width; const y1 = a.y + height / 2; const x2 = b.x; const y2 = b.y + height / 2;
    return svg('path', { class: 'edge', d: `M${x1},${y1} C${x1 + gapX / 2},${y1} ${x2 - gapX / 2},${y2} ${x2 - 4},${y2}`, 'marker-end': `url(#${arrow})` });
  }));
  const nodes = ops.map((op) => {
    const p = place.get(op.name);
    return svg('g', { class: 'node', 'data-op': op.name },
      svg('rect', { x: p.x, y: p.y, width, height, rx: 6 }),
      svg('text', { x: p.x + width / 2, y: p.y + height / 2 + 4, 'text-anchor': 'middle' }, document.createTextNode(op.name)),
      op.max_attempts > 1 ? svg('title', {}, document.createTextNode(`up to ${op.max_attempts} attempts`)) : null);
  });
  return svg('svg', { class: 'dag', viewBox: `0 0 ${total.w} ${total.h}`, width: total.w, height: total.h, role: 'img', 'aria-label': `ops: ${ops.map((o) => o.name).join(', ')}` },
    svg('defs', {}, svg('marker', { id: arrow, viewBox: '0 0 8 8', refX: 7, refY: 4, markerWidth: 8, markerHeight: 8, orient: 'auto' }, svg('path', { d: 'M0,0 L8,4 L0,8 z' }))),
    edges, nodes);
}
