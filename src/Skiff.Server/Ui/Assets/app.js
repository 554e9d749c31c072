// The web UI's shell: session, API calls, routing. Pages live in pages/*.js; each renders into <main>
// with DOM nodes built by h() (never innerHTML from data) and may return a function that stops what it
// started (an EventSource) when the page changes.
import { h, clear } from './dom.js';

let csrf = null;

/** Who is signed in: the token's name, its role and the locations it is limited to (empty: every one). */
export const session = { token: null, role: null, locations: [] };

/** Whether the signed-in token may act with `role` on `location`: pages leave out what it may not. The server still decides. */
export function may(role, location) {
  const order = ['read', 'run', 'deploy', 'admin'];
  return order.indexOf(session.role) >= order.indexOf(role)
    && (session.locations.length === 0 || location === undefined || session.locations.includes(location));
}

/** Thrown for an answer that is not 2xx; message is the API's own error text. */
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** Calls the same /api/v1 the CLI uses; the session cookie authenticates, actions carry the CSRF token. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-Skiff-Csrf'] = csrf ?? '';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`/api/v1${path}`, {
    method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => null);
  if (response.status === 401) { csrf = null; showSignIn(json?.error); throw new ApiError(401, json?.error ?? 'signed out'); }
  if (!response.ok) throw new ApiError(response.status, json?.error ?? `the server answered ${response.status}`);
  return json;
}

/**
 * Calls draw every `ms` after the previous call finished (so a slow server never gets calls piling up), skipping while
 * the tab is hidden; returns what stops it.
 */
export function every(ms, draw) {
  let timer = 0;
  let stopped = false;
  const tick = async () => {
    if (!document.hidden) await draw().catch(() => {});
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => { stopped = true; clearTimeout(timer); };
}

const routes = [
  [/^\/$/, () => import('./pages/overview.js')],
  [/^\/locations\/([^/]+)$/, () => import('./pages/location.js')],
  [/^\/locations\/([^/]+)\/diff$/, () => import('./pages/diff.js')],
  [/^\/locations\/([^/]+)\/jobs$/, () => import('./pages/jobs.js')],
  [/^\/locations\/([^/]+)\/jobs\/([^/]+)\/launch$/, () => import('./pages/launch.js')],
  [/^\/runs$/, () => import('./pages/runs.js')],
  [/^\/runs\/([^/]+)$/, () => import('./pages/run.js')],
  [/^\/agents$/, () => import('./pages/agents.js')],
  [/^\/webhooks$/, () => import('./pages/webhooks.js')],
  [/^\/schedules$/, () => import('./pages/schedules.js')],
];

let stopPage = null;
let generation = 0;

async function route() {
  if (stopPage) { stopPage(); stopPage = null; }
  const main = document.getElementById('main');
  if (csrf === null) { showSignIn(); return; }
  const [path, search] = (location.hash.slice(1) || '/').split('?');
  const query = new URLSearchParams(search ?? '');
  const mine = ++generation;
  for (const [pattern, load] of routes) {
    const match = pattern.exec(path);
    if (!match) continue;
    const page = await load();
    if (mine !== generation) return;
    // Each page renders into a container of its own, put in place once it has rendered and only if no later
    // navigation happened meanwhile: a slow page never lands inside the next one.
    const container = h('div', { class: 'page' });
    try {
      const stop = await page.render(container, match.slice(1).map(decodeURIComponent), query);
      if (mine === generation) { clear(main); main.append(container); stopPage = stop ?? null; } else stop?.();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      if (mine === generation) { clear(main); main.append(h('p', { class: 'error', role: 'alert' }, error.message)); }
    }
    return;
  }
  clear(main);
  main.append(h('p', { class: 'error' }, `There is no page ${path}. `, h('a', { href: '#/' }, 'Overview')));
}

function showSignIn(reason) {
  if (stopPage) { stopPage(); stopPage = null; }
  generation++;
  document.getElementById('nav').hidden = true;
  document.getElementById('sign-out').hidden = true;
  const main = document.getElementById('main');
  clear(main);
  // Not a password a browser should offer to keep: the token stays out of the browser (docs/ui.md).
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, placeholder: 'skiff_…' });
  const message = h('p', { class: 'error', role: 'alert', hidden: !reason }, reason ?? '');
  const form = h('form', { class: 'card sign-in', id: 'sign-in' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Paste a token: the server\'s ("token" in the client.json that `skiff up` wrote, or the token file of `skiff server`), or one made with `skiff tokens create`, which shows only what that token may see and do.'),
    h('label', { for: 'token' }, 'Token'), input, message,
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const response = await fetch('/ui/session', {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: input.value }),
    });
    const json = await response.json().catch(() => ({}));
    if (!response.ok) { message.textContent = json.error ?? `the server answered ${response.status}`; message.hidden = false; return; }
    signedIn(json);
  });
  main.append(form);
  input.focus();
}

function signedIn(answer) {
  csrf = answer.csrf;
  Object.assign(session, { token: answer.token, role: answer.role, locations: answer.locations ?? [] });
  document.getElementById('nav').hidden = false;
  document.getElementById('sign-out').hidden = false;
  // The sign-in form goes at once, not when the first page has rendered: nothing on screen offers a form already sent.
  clear(document.getElementById('main'));
  route();
}

document.getElementById('sign-out').addEventListener('click', async () => {
  await fetch('/ui/session/end', { method: 'POST', credentials: 'same-origin' });
  csrf = null;
  showSignIn();
});
window.addEventListener('hashchange', route);

const current = await fetch('/ui/session', { credentials: 'same-origin' }).then((r) => r.json());
if (current.signed_in) signedIn(current); else showSignIn();
