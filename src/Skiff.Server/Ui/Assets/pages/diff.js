// What changed between the releases of two deployments: packages, source, and what a deploy moved.
import { api } from '../app.js';
import { h, digest, bytes, badge, enc } from '../dom.js';

export async function render(main, [name], query) {
  const [from, to] = await Promise.all([api(`/deployments/${enc(query.get('from'))}`), api(`/deployments/${enc(query.get('to'))}`)]);
  const diff = await api(`/releases/${enc(from.release)}/diff/${enc(to.release)}`);
  const p = diff.packages;
  const table = (head, rows) => h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, head.map((t) => h('th', {}, t)))), h('tbody', {}, rows)));
  const packageRow = (kind, x) => h('tr', { class: kind, 'data-package': x.id }, h('td', {}, badge(kind)), h('td', {}, x.id), h('td', {}, '–'), h('td', {}, x.version), h('td', {}, bytes(x.bytes)));
  main.append(
    h('p', {}, h('a', { href: `#/locations/${enc(name)}` }, `← ${name}`)),
    h('h1', {}, 'Release diff'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'From'), h('dd', {}, h('code', {}, from.deployment), ' release ', digest(diff.from.release)),
      h('dt', {}, 'To'), h('dd', {}, h('code', {}, to.deployment), ' release ', digest(diff.to.release)),
      h('dt', {}, 'Source'), h('dd', { id: 'source' }, diff.source_changed ? ['changed ', digest(diff.from.source), ' → ', digest(diff.to.source)] : ['unchanged ', digest(diff.to.source)]),
      h('dt', {}, 'Environment'), h('dd', {}, diff.environment_changed ? ['changed ', digest(diff.from.environment), ' → ', digest(diff.to.environment)] : ['unchanged ', digest(diff.to.environment)],
        ` · ${diff.to.framework} ${diff.to.rid} · ${diff.to.packages} packages`),
      h('dt', {}, 'Deploy of "to"'), h('dd', {}, `${to.path}: uploaded ${bytes(to.uploaded.bytes)} in ${to.uploaded.blobs} blobs`)),
    h('h2', {}, `Packages: ${p.added.length} added, ${p.removed.length} removed, ${p.changed.length} changed, ${p.unchanged} unchanged`),
    p.added.length + p.removed.length + p.changed.length === 0 ? h('p', { class: 'muted' }, 'The same packages.')
      : table(['', 'Package', 'From', 'To', 'Blob size'], [
        ...p.changed.map((c) => h('tr', { class: 'changed', 'data-package': c.id }, h('td', {}, badge('changed')), h('td', {}, c.id),
          h('td', {}, `${c.from.version} (${bytes(c.from.bytes)})`), h('td', {}, c.to.version), h('td', {}, bytes(c.to.bytes)))),
        ...p.added.map((x) => packageRow('added', x)),
        ...p.removed.map((x) => h('tr', { class: 'removed', 'data-package': x.id }, h('td', {}, badge('removed')), h('td', {}, x.id), h('td', {}, x.version), h('td', {}, '–'), h('td', {}, bytes(x.bytes))))]),
    h('h2', {}, `Over the wire: ${diff.transfer.blobs} blob${diff.transfer.blobs === 1 ? '' : 's'}, ${bytes(diff.transfer.bytes)}`),
    h('p', { class: 'muted' }, 'What the "to" release holds that the "from" release did not: what a deploy of it uploads to a store that had only the other.'),
    diff.transfer.items.length === 0 ? h('p', { class: 'muted' }, 'Nothing to move: a store holding the "from" release holds all of the "to" release.')
      : table(['Kind', 'What', 'Blob', 'Size'], diff.transfer.items.map((i) => h('tr', {}, h('td', {}, i.kind), h('td', {}, i.name), h('td', {}, digest(i.blob)), h('td', {}, bytes(i.bytes))))));
}
