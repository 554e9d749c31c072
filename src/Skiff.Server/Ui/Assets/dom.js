// Small helpers shared by the pages: DOM building and the formats every page uses.

/** Creates an element; attributes set as properties where the DOM has one, children appended as text or nodes. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'style' && typeof value === 'object') Object.assign(element.style, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

const svgNamespace = 'http://www.w3.org/2000/svg';

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(svgNamespace, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children.flat()) if (child) element.append(child);
  return element;
}

export function clear(element) { while (element.firstChild) element.firstChild.remove(); }

export function bytes(count) {
  if (count === null || count === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function ago(iso) {
  if (!iso) return '–';
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < -1) {
    const ahead = -seconds;
    return ahead < 60 ? `in ${Math.ceil(ahead)} s` : ahead < 3600 ? `in ${Math.ceil(ahead / 60)} min` : `in ${Math.ceil(ahead / 3600)} h`;
  }
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function when(iso) {
  return iso ? h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, ago(iso)) : '–';
}

/** A digest shortened for reading, the whole of it in the title and kept for copying. */
export function digest(value) {
  if (!value) return '–';
  return h('code', { class: 'digest', title: value }, value.replace(/^sha256:/, '').slice(0, 12));
}

export function badge(status) {
  return h('span', { class: `badge ${status}` }, status ?? '–');
}

export const stages = ['restore', 'build', 'pack', 'upload', 'activate'];

export function enc(value) { return encodeURIComponent(value); }
