// Webhook subscriptions and their deliveries with every attempt (docs/webhooks.md): what was sent where, what the
// receiver answered, and when the next try is. Subscriptions are made and removed with `skiff webhooks`.
import { api, may, session } from '../app.js';
import { h, when, badge, enc } from '../dom.js';

export async function render(main, _, query) {
  const subscription = query.get('subscription') ?? '';
  main.append(h('h1', {}, 'Webhooks'));
  if (session.locations.length > 0) {
    main.append(h('p', { class: 'muted' }, 'Deliveries name events of every location: they need a token for every location.'));
    return;
  }
  const [subscriptions, deliveries] = await Promise.all([
    may('admin') ? api('/webhooks') : Promise.resolve(null),
    api(`/webhooks/deliveries?${new URLSearchParams({ ...(subscription ? { subscription } : {}), limit: '100' })}`),
  ]);

  main.append(h('h2', {}, 'Subscriptions'));
  if (subscriptions === null) {
    main.append(h('p', { class: 'muted' }, 'Listing subscriptions needs an admin token: their URLs may hold the receiver\'s own secret.'));
  } else if (subscriptions.length === 0) {
    main.append(h('p', { class: 'muted' }, 'None yet: `skiff webhooks add URL --on run_failed [--location NAME]` makes one and prints its signing secret once.'));
  } else {
    main.append(h('div', { class: 'scroll' }, h('table', { id: 'subscriptions' },
      h('thead', {}, h('tr', {}, ['Subscription', 'URL', 'Events', 'Location', 'Made'].map((t) => h('th', {}, t)))),
      h('tbody', {}, subscriptions.map((s) => h('tr', { 'data-subscription': s.id },
        h('td', {}, h('a', { href: `#/webhooks?subscription=${enc(s.id)}` }, h('code', {}, s.id))),
        h('td', {}, h('code', {}, s.url)),
        h('td', { class: 'chips' }, s.events.map((e) => h('span', { class: 'tag' }, e))),
        h('td', {}, s.location ? h('a', { href: `#/locations/${enc(s.location)}` }, s.location) : h('span', { class: 'muted' }, 'every')),
        h('td', {}, when(s.created_at), h('span', { class: 'muted' }, ` by ${s.created_by}`))))))));
  }

  main.append(h('h2', {}, subscription ? ['Deliveries to ', h('code', {}, subscription), ' ', h('a', { href: '#/webhooks' }, '(all)')] : 'Deliveries, newest first'));
  if (deliveries.length === 0) { main.append(h('p', { class: 'muted' }, 'Nothing sent yet.')); return; }
  main.append(h('div', { class: 'scroll' }, h('table', { id: 'deliveries' },
    h('thead', {}, h('tr', {}, ['Delivery', 'Event', 'About', 'Status', 'Attempts', 'Last answer', 'Next try'].map((t) => h('th', {}, t)))),
    h('tbody', {}, deliveries.map((d) => {
      const last = d.attempts.at(-1);
      return h('tr', { 'data-delivery': d.id, 'data-subject': d.subject },
        h('td', {}, h('code', { title: `webhook-id ${d.id}, subscription ${d.subscription}` }, d.id), h('br', {}), when(d.created_at)),
        h('td', {}, d.event),
        h('td', {}, d.subject.startsWith('r-') ? h('a', { href: `#/runs/${enc(d.subject)}` }, d.subject) : h('code', {}, d.subject),
          ' on ', h('a', { href: `#/locations/${enc(d.location)}` }, d.location)),
        h('td', {}, badge(d.status)),
        h('td', { class: 'attempts' }, String(d.attempts.length)),
        h('td', { class: 'last-answer' }, last ? [when(last.at), ' ', last.http_status ? h('code', {}, String(last.http_status)) : null, last.error ? h('span', { class: 'muted' }, ` ${last.error}`) : null] : '–'),
        h('td', {}, d.status === 'pending' && d.next_attempt_at ? when(d.next_attempt_at) : '–'));
    })))));
}
