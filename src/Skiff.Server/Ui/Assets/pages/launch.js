// A form made from the job's parameter definitions. The API (the agent, through POST /runs) is what
// validates: the form sends typed JSON where a value reads as its type and the text as typed otherwise,
// so a bad value is refused with the very message `skiff run` shows, and no second copy of the rules drifts.
import { api, may } from '../app.js';
import { h, enc } from '../dom.js';

export async function render(main, [name, jobName]) {
  const live = await api(`/locations/${enc(name)}/jobs`);
  const job = live.jobs.find((j) => j.name === jobName);
  if (!job) throw new Error(`the live release of '${name}' has no job '${jobName}'.`);
  if (!may('run', name)) throw new Error(`launching a run on ${name} needs a token with the role 'run' or higher for it; this session's token may only read.`);
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const inputs = (job.parameters ?? []).map((p) => {
    const id = `param-${p.name}`;
    const input = p.type === 'boolean'
      ? h('input', { id, name: p.name, type: 'checkbox', checked: p.default === true })
      : h('input', { id, name: p.name, type: 'text', inputmode: p.type === 'string' ? undefined : 'decimal', required: p.required, value: p.required ? '' : String(p.default ?? '') });
    return { p, input, field: h('div', { class: 'field' },
      h('label', { for: id }, p.name, h('span', { class: 'muted' }, ` ${p.type}${p.required ? ', required' : ''}`)), input,
      p.description ? h('small', { class: 'muted' }, p.description) : null) };
  });
  const submit = h('button', { type: 'submit' }, 'Launch run');
  const form = h('form', { class: 'card launch', id: 'launch' }, inputs.map((i) => i.field), message, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const params = {};
    for (const { p, input } of inputs) {
      if (p.type === 'boolean') params[p.name] = input.checked;
      else if (input.value === '' && p.type !== 'string') continue;
      else if (p.type === 'integer' && /^-?\d+$/.test(input.value.trim()) && Number.isSafeInteger(Number(input.value))) params[p.name] = Number(input.value);
      else if (p.type === 'number' && input.value.trim() !== '' && Number.isFinite(Number(input.value))) params[p.name] = Number(input.value);
      else params[p.name] = input.value;
    }
    submit.disabled = true;
    message.hidden = true;
    try {
      const started = await api('/runs', { method: 'POST', body: { location: name, job: job.name, params } });
      location.hash = `#/runs/${enc(started.run)}`;
    } catch (error) {
      message.textContent = error.message;
      message.hidden = false;
    } finally { submit.disabled = false; }
  });
  main.append(
    h('p', {}, h('a', { href: `#/locations/${enc(name)}/jobs` }, `← jobs on ${name}`)),
    h('h1', {}, `Launch ${job.name} on ${name}`),
    job.description ? h('p', { class: 'muted' }, job.description) : null,
    form);
  inputs[0]?.input.focus();
}
