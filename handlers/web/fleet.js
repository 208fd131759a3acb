// Hosts (fleet mode, issue 14): every host's status and jails, and bans/unbans sent to several hosts with their
// per-host state. The page knows whether fleet mode is on from /health (`fleet` is null without it), so a
// single-host server is told so without a failing call (a 404 is an error in the browser's console).
import {
  h, api, state, alive, may, box, card, num, dur, toDate, fmtDate, muted, failed, table, field, onSubmit, notice, statusBadge,
  plural, fleetMode, noteHealth, VIEWS,
} from './core.js';

const HOST_STATUS = { up: 'ok', stale: 'warn', down: 'bad' };
const hostBadge = (s) => h('span', { class: 'badge ' + (HOST_STATUS[s] || '') }, s || '?');
// (unknown, shown as "—", while the host's fail2ban does not answer: it has no jails to count then)
const banned = (x) => (x.jails || []).reduce((a, j) => a + (j.currently_banned || 0), 0);
const OFF = 'Fleet mode is off on this server: it manages only its own fail2ban. '
  + 'Set BANGUI_FLEET_URL on every host to manage them together.';

// "4 s ago" ("just now" within a second: the host's clock may be a little ahead of the browser's)
const ago = (v) => {
  const d = toDate(v);
  if (!d) return '—';
  const s = Math.round((Date.now() - d) / 1000);
  return h('time', { datetime: d.toISOString(), title: fmtDate(d) }, s < 1 ? 'just now' : dur(s) + ' ago');
};
// what a host that is not up last reported (it may have changed since) is shown muted
const asOf = (x, v) => (x.status === 'up' ? v : h('span', { class: 'muted', title: 'as last reported' }, v));
// fail2ban as the host last reported it; a host that stopped reporting says "last report" (it may have changed)
function f2bCell(x) {
  const f = x.fail2ban || {};
  const text = f.reachable ? 'up' + (f.version ? ' ' + f.version : '') : 'unreachable';
  if (x.status !== 'up') return h('span', { class: 'muted' }, 'last report: ' + text);
  return f.reachable ? text : h('span', { class: 'bad' }, text);
}
// each jail and its banned count, as text, not links (a jail page shows the jails of the host serving this page)
const jailsCell = (x) => ((x.jails || []).length
  ? h('ul', { class: 'jails' }, x.jails.map((j) => h('li', {}, j.name + ' ' + num(j.currently_banned))))
  : '—');

// Fleet degraded (issue 21 item 1): Redis does not answer and this host serves from its replica of the fleet's
// identity (users, sessions, tokens). A line under the header on every view says since when and how old that replica
// is (revocations made after its last refresh are not in it); in fleet mode /health is asked every HEALTH_MS.
const HEALTH_MS = 15000;
let fleetLine = null, fleetTimer = null, fleetSeen = null;
function ageOf(f) {
  const d = toDate(f.replica_refreshed);
  const s = d ? Math.max(0, (Date.now() - d) / 1000) : f.replica_age_s;
  return s == null ? null : s;
}
function drawFleet() {
  const f = fleetSeen;
  if (!fleetLine) {
    fleetLine = h('div', { id: 'fleet-state', class: 'banner warn-line', role: 'status' });
    document.getElementById('f2b').before(fleetLine);
  }
  fleetLine.hidden = !(state.me && f && f.status === 'degraded');
  if (fleetLine.hidden) return;
  const since = toDate(f.since), age = ageOf(f);
  fleetLine.textContent = 'Fleet degraded' + (since ? ' since ' + fmtDate(since) : '') + ": the fleet's Redis does not answer. "
    + 'This host serves from its own copy of the fleet\'s users, sessions and tokens, '
    + (age == null ? 'never refreshed' : 'last refreshed ' + dur(Math.round(age)) + ' ago') + '. '
    + 'Users, roles, passwords and tokens cannot be changed until Redis is back.';
}
state.noteFleet = (f) => {
  fleetSeen = f || null;
  drawFleet();
  if (f && !fleetTimer) {
    fleetTimer = setInterval(() => {
      if (!state.me || document.visibilityState !== 'visible') return;
      api('health').then(noteHealth, () => drawFleet()); // unanswered: the age shown keeps growing
    }, HEALTH_MS);
  }
};

VIEWS.hosts = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Hosts'));
  if ((await fleetMode()) === false) { if (alive(ctx)) main.append(muted(OFF)); return; }
  if (!alive(ctx)) return;
  let r;
  try { r = await api('fleetHosts'); } catch (e) {
    if (e.status === 404) { if (alive(ctx)) main.append(muted(OFF)); return; }
    throw e;
  }
  if (!alive(ctx)) return;
  const counts = h('div', { class: 'cards' }), list = h('div'), sort = { by: -1, desc: false };
  const late = h('p', { class: 'warn', role: 'status', hidden: true }); // the list is older than it looks
  main.append(counts, box('Hosts', late, list));
  let form = null;
  const draw = (hosts) => {
    const n = (s) => hosts.filter((x) => x.status === s).length;
    counts.replaceChildren(card(hosts.length, 'hosts'), card(n('up'), 'up'), card(n('stale'), 'stale'), card(n('down'), 'down'));
    list.replaceChildren(table(hosts, [
      ['Host', (x) => h('span', { class: 'mono' }, x.name), '', (x) => x.name],
      ['Status', (x) => hostBadge(x.status), '', (x) => ['up', 'stale', 'down'].indexOf(x.status)],
      ['Last seen', (x) => ago(x.last_seen), 'hide-sm', (x) => x.last_seen || ''],
      ['fail2ban', f2bCell],
      ['Banned now', (x) => asOf(x, x.fail2ban && x.fail2ban.reachable ? num(banned(x)) : '—'), 'num', banned],
      ['Jails', (x) => asOf(x, jailsCell(x)), 'hide-sm'],
      ['Version', (x) => x.version || '—', 'hide-sm'],
    ], 'No host has reported yet.', undefined, sort));
    if (form) form.update(hosts);
  };
  let last = r.hosts || [], at = new Date();
  draw(last);
  ctx.refresh = async () => {
    let again;
    try { again = await api('fleetHosts'); } catch (e) {
      // Redis (or this server) does not answer: keep the last list, its "last seen" ageing, and say so
      if (!alive(ctx)) return;
      draw(last);
      late.textContent = 'Not refreshed since ' + fmtDate(at) + ': the statuses below may be out of date.';
      late.hidden = false;
      throw e;
    }
    if (!alive(ctx)) return;
    last = again.hosts || [];
    at = new Date();
    late.hidden = true;
    draw(last);
  };
  // hosts report by heartbeats, which are not events of the page's stream: this view re-reads them every 5 s
  const tick = setInterval(() => { if (alive(ctx) && document.visibilityState === 'visible') state.refreshNow(); }, 5000);
  ctx.cleanup = () => clearInterval(tick);
  if (may('fleetBan', 'operator')) {
    const sent = h('div', { 'aria-live': 'polite' });
    form = sendForm(r.hosts || [], sent, ctx);
    main.append(box('Ban or unban on several hosts', form.el, sent));
  }
};

// Addresses, a jail (any jail of any host), the hosts (all by default) and two buttons: Ban, Unban.
// The host list and the jails follow the refreshes (a host that joins later can be chosen; choices are kept).
function sendForm(hosts, out, ctx) {
  const ips = h('textarea', { rows: 3, spellcheck: 'false', placeholder: '203.0.113.7\n198.51.100.0/24', required: true });
  const jail = h('select', { required: true });
  const picks = h('div', { class: 'row picks' });
  const boxes = new Map(); // host name -> its checkbox
  const form = h('form', { class: 'stack' }, field('Addresses or networks, one per line', ips), field('Jail', jail),
    h('fieldset', {}, h('legend', {}, 'Hosts'), picks),
    h('div', { class: 'row' }, h('button', { type: 'submit', value: 'ban' }, 'Ban'),
      h('button', { type: 'submit', value: 'unban', class: 'danger' }, 'Unban')));
  const update = (list) => {
    const names = [...new Set(list.flatMap((x) => (x.jails || []).map((j) => j.name)))].sort();
    const chosen = jail.value;
    if (names.join('\n') !== [...jail.options].map((o) => o.value).join('\n')) {
      jail.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
      if (names.includes(chosen)) jail.value = chosen;
    }
    for (const x of [...list].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      let cb = boxes.get(x.name);
      if (!cb) {
        cb = h('input', { type: 'checkbox', checked: true, value: x.name });
        boxes.set(x.name, cb);
        picks.append(h('label', { class: 'pick' }, cb, ' ', x.name, h('span', { class: 'muted' })));
      }
      // the status beside the name: a host that is not up applies the request when it is back
      cb.parentNode.lastChild.textContent = x.status === 'up' ? '' : ' (' + x.status + ')';
    }
  };
  update(hosts);
  let request = 0; // the request on screen: a newer one stops the polling of the older
  onSubmit(form, async (submitter) => {
    const unban = submitter && submitter.value === 'unban';
    const chosen = [...boxes.values()].filter((c) => c.checked).map((c) => c.value);
    if (!chosen.length) throw new Error('Choose at least one host.');
    const body = { ips: ips.value.split(/[\s,]+/).filter(Boolean), jail: jail.value };
    if (chosen.length !== boxes.size) body.hosts = chosen;
    const r = unban ? await api('fleetUnban', { body }) : await api('fleetBan', { body });
    const n = body.ips.length;
    const what = (unban ? 'Unban of ' : 'Ban of ') + (n === 1 ? '1 address' : num(n) + ' addresses') + ' in ' + body.jail;
    notice((unban ? 'Unban' : 'Ban') + ' sent to ' + plural((r.hosts || []).length, 'host') + '.');
    if (r.id != null) follow(r.id, what, out, ctx, ++request, () => request);
  });
  return { el: form, update };
}

// The per-host state of one request, polled until no host is pending, a newer request replaces it, or the view
// is left. Hosts that are down stay pending: they apply the request when they are back (the log is durable).
async function follow(id, what, out, ctx, mine, current) {
  const wait = [250, 250, 500, 500, 1000];
  const live = () => alive(ctx) && mine === current();
  for (let i = 0; i < 90 && live(); i++) {
    let r;
    try { r = await api('fleetBanState', { params: { id } }); } catch (e) {
      if (live()) out.replaceChildren(h('h3', {}, what), failed(e));
      return;
    }
    if (!live()) return;
    const rows = Object.entries(r.hosts || {}).map(([name, s]) => ({ name, ...s }));
    const pending = rows.filter((x) => x.status === 'pending').length;
    out.replaceChildren(h('h3', {}, what), table(rows, [['Host', (x) => h('span', { class: 'mono' }, x.name)],
      ['State', (x) => statusBadge(x.status)], ['Error', (x) => x.error || '—']]),
    h('p', { class: 'muted small' }, 'Request ' + id + (pending ? ': ' + plural(pending, 'host') + ' pending' : ': done') + '.'));
    if (!pending) return;
    await new Promise((resolve) => setTimeout(resolve, wait[Math.min(i, wait.length - 1)]));
  }
  if (live()) out.append(muted('This page stopped checking; pending hosts apply the request when they answer again.'));
}
