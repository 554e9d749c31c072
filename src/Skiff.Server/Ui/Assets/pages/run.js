// One run: ops on a time axis with their attempts, progress, metadata, and the live log from Server-Sent
// Events. Lines are appended (batched per animation frame); nothing already shown is rendered again, so a
// run that writes 10,000 lines stays responsive.
import { api, may } from '../app.js';
import { h, clear, when, badge, digest, duration, enc } from '../dom.js';

export async function render(main, [id]) {
  let run = await api(`/runs/${enc(id)}`);
  const ops = new Map();
  const op = (name) => { if (!ops.has(name)) ops.set(name, { attempts: [], progress: null, metadata: {} }); return ops.get(name); };
  // A queued run starts later than it was asked for: its time axis starts with its run_started event.
  let runStart = Date.parse(run.started_at);
  let runEnd = run.finished_at ? Date.parse(run.finished_at) : null;
  let lastSeen = runStart;

  const status = h('span', { id: 'run-status' }, badge(run.status));
  const reason = h('p', { class: 'error', id: 'run-reason', hidden: !run.reason }, run.reason ?? '');
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const cancel = h('button', { type: 'button', id: 'cancel', class: 'danger', hidden: !['running', 'queued'].includes(run.status) || !may('run', run.location) }, 'Cancel run');
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try { await api(`/runs/${enc(id)}/cancel`, { method: 'POST' }); } catch (error) { message.textContent = error.message; message.hidden = false; cancel.disabled = false; }
  });
  const gantt = h('div', { class: 'gantt', id: 'gantt' });
  const opDetails = h('div', { class: 'op-details', id: 'op-details' });
  const log = h('ol', { class: 'log', id: 'log' });
  const logBox = h('div', { class: 'log-box' }, log);
  main.append(
    h('h1', {}, h('code', {}, id), ' ', status),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Job'), h('dd', {}, h('a', { href: `#/locations/${enc(run.location)}/jobs` }, run.job), ' on ', h('a', { href: `#/locations/${enc(run.location)}` }, run.location)),
      h('dt', {}, 'Release'), h('dd', {}, digest(run.release), h('span', { class: 'muted' }, ' (pinned: the run keeps it whatever is deployed after)')),
      h('dt', {}, 'Started'), h('dd', { id: 'run-started' }, run.status === 'queued'
        ? h('span', { class: 'muted' }, 'not yet: queued at its location\'s or job\'s concurrency limit; it starts when a run ends')
        : [when(run.started_at), run.agent ? h('span', { class: 'muted' }, ` on agent ${run.agent}`) : null]),
      run.queued_at ? [h('dt', {}, 'Queue wait'), h('dd', { id: 'run-queue-wait' }, run.queue_wait_ms != null ? duration(run.queue_wait_ms) : ['waiting since ', when(run.queued_at)])] : null,
      h('dt', {}, 'Parameters'), h('dd', {}, h('code', {}, JSON.stringify(run.params)))),
    reason, message, cancel,
    h('h2', {}, 'Ops'), gantt, opDetails,
    h('h2', {}, 'Events'), logBox);

  const pending = [];
  let dirty = false;
  let frame = 0;
  const schedule = () => { if (!frame) frame = requestAnimationFrame(flush); };

  function flush() {
    frame = 0;
    if (pending.length) {
      const follow = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 24;
      const fragment = document.createDocumentFragment();
      for (const line of pending.splice(0)) fragment.append(line);
      log.append(fragment);
      if (follow) logBox.scrollTop = logBox.scrollHeight;
    }
    if (dirty) { dirty = false; drawOps(); }
  }

  function drawOps() {
    const end = runEnd ?? Math.max(lastSeen, Date.now());
    const span = Math.max(1, end - runStart);
    clear(gantt);
    gantt.append(h('div', { class: 'axis' }, h('span', {}, '0'), h('span', {}, duration(span))));
    for (const [name, state] of ops) {
      const bars = state.attempts.map((a) => {
        const left = (100 * (a.start - runStart)) / span;
        const right = (100 * ((a.end ?? end) - runStart)) / span;
        return h('span', {
          class: `bar ${a.status}`, style: { left: `${left}%`, width: `${Math.max(0.5, right - left)}%` },
          title: `${name} attempt ${a.attempt}: ${a.status}${a.end ? `, ${duration(a.end - a.start)}` : ''}${a.error ? ` — ${a.error}` : ''}`,
        }, state.attempts.length > 1 ? `#${a.attempt}` : '');
      });
      const progress = state.progress
        ? h('div', { class: 'progress' }, h('progress', { max: 1, value: state.progress.fraction }), h('small', {}, `${Math.round(state.progress.fraction * 100)}% ${state.progress.message ?? ''}`))
        : null;
      gantt.append(h('div', { class: 'gantt-row', 'data-op': name }, h('span', { class: 'op-name' }, name), h('div', { class: 'track' }, bars), progress));
    }
    clear(opDetails);
    const withMetadata = [...ops].filter(([, s]) => Object.keys(s.metadata).length);
    if (withMetadata.length) {
      opDetails.append(h('table', { class: 'metadata' }, h('thead', {}, h('tr', {}, h('th', {}, 'Op'), h('th', {}, 'Metadata'), h('th', {}, 'Value'))),
        h('tbody', {}, withMetadata.flatMap(([name, s]) => Object.entries(s.metadata).map(([k, v]) => h('tr', {}, h('td', {}, name), h('td', {}, k), h('td', {}, h('code', {}, JSON.stringify(v)))))))));
    }
  }

  function line(event, level, ...text) {
    const time = event.ts ? event.ts.slice(11, 23) : '';
    pending.push(h('li', { class: `line ${level}`, 'data-seq': event.seq, 'data-type': event.type },
      h('span', { class: 'ts' }, time), h('span', { class: 'who' }, event.op ? `${event.op}${event.attempt > 1 ? `#${event.attempt}` : ''}` : 'run'),
      h('span', { class: 'level' }, level), h('span', { class: 'text' }, ...text)));
  }

  function apply(event) {
    const at = event.ts ? Date.parse(event.ts) : Date.now();
    lastSeen = Math.max(lastSeen, at);
    switch (event.type) {
      case 'run_started':
        if (run.status === 'queued') {
          // It left the queue while this page was open.
          run = { ...run, status: 'running' };
          runStart = at;
          clear(status); status.append(badge('running'));
          api(`/runs/${enc(id)}`).then((started) => {
            const startedAt = document.getElementById('run-started');
            if (startedAt) { clear(startedAt); startedAt.append(when(started.started_at), started.agent ? h('span', { class: 'muted' }, ` on agent ${started.agent}`) : ''); }
            const wait = document.getElementById('run-queue-wait');
            if (wait && started.queue_wait_ms != null) { clear(wait); wait.append(duration(started.queue_wait_ms)); }
          }).catch(() => {});
        }
        line(event, 'info', `started ${event.job} with `, h('code', {}, JSON.stringify(event.parameters ?? {}))); break;
      case 'op_started': op(event.op).attempts.push({ attempt: event.attempt, start: at, end: null, status: 'running' }); line(event, 'info', 'started'); dirty = true; break;
      case 'op_succeeded': case 'op_failed': case 'op_canceled': case 'op_retrying': {
        const attempt = op(event.op).attempts.find((a) => a.attempt === event.attempt);
        const outcome = { op_succeeded: 'succeeded', op_failed: 'failed', op_canceled: 'canceled', op_retrying: 'retried' }[event.type];
        if (attempt) Object.assign(attempt, { end: at, status: outcome, error: event.error?.message });
        line(event, event.type === 'op_succeeded' ? 'info' : 'warn', outcome,
          event.duration_ms !== undefined ? ` in ${duration(event.duration_ms)}` : '',
          event.error ? `: ${event.error.type}: ${event.error.message}` : '', event.delay_ms !== undefined ? `; again in ${duration(event.delay_ms)}` : '');
        dirty = true; break;
      }
      case 'op_skipped': op(event.op); line(event, 'warn', `skipped: ${event.reason}`); dirty = true; break;
      case 'log': {
        const properties = Object.entries(event.properties ?? {});
        line(event, event.level, event.message,
          properties.length ? h('span', { class: 'props' }, properties.map(([k, v]) => h('span', { class: 'prop' }, `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`))) : null,
          event.error ? h('pre', { class: 'stack' }, `${event.error.type}: ${event.error.message}\n${event.error.stack ?? ''}`) : null);
        break;
      }
      case 'output': line(event, event.stream, event.text); break;
      case 'progress': op(event.op).progress = { fraction: event.fraction, message: event.message }; dirty = true; break;
      case 'metadata': Object.assign(op(event.op).metadata, event.metadata); line(event, 'info', 'metadata ', h('code', {}, JSON.stringify(event.metadata))); dirty = true; break;
      case 'run_succeeded': case 'run_failed': case 'run_canceled': {
        const outcome = event.type.slice(4);
        runEnd = at;
        clear(status); status.append(badge(outcome));
        cancel.hidden = true;
        if (event.reason) { reason.textContent = event.reason; reason.hidden = false; }
        line(event, outcome === 'succeeded' ? 'info' : 'error', `${outcome} in ${duration(event.duration_ms)}`, event.reason ? `: ${event.reason}` : '');
        dirty = true; break;
      }
      default: line(event, 'debug', event.type);
    }
    schedule();
  }

  // The stream ends with an "end" event once the run has ended and every stored event was sent.
  const source = new EventSource(`/api/v1/runs/${enc(id)}/stream`);
  source.onmessage = (message) => apply(JSON.parse(message.data));
  // A stream the browser gave up on (the session ended, the token was revoked, the run is gone): asking for the run
  // says why, as a sign-in form for a 401 or the server's message.
  source.onerror = async () => {
    if (source.readyState !== EventSource.CLOSED) return;
    try { await api(`/runs/${enc(id)}`); } catch (error) { if (error.status !== 401) { message.textContent = error.message; message.hidden = false; } }
  };
  source.addEventListener('end', async () => {
    source.close();
    run = await api(`/runs/${enc(id)}`).catch(() => run);
    if (run.finished_at) runEnd = Date.parse(run.finished_at);
    clearInterval(ticker);
    clear(status); status.append(badge(run.status));
    cancel.hidden = true;
    main.dataset.ended = 'true';
  });
  // Bars of running ops grow with the clock while nothing else arrives.
  const ticker = setInterval(() => { if (runEnd === null && ops.size) { dirty = true; schedule(); } }, 500);
  dirty = true;
  schedule();
  return () => { source.close(); clearInterval(ticker); cancelAnimationFrame(frame); };
}
