// Hosts (fleet mode, issue 14): every host's status and jails, and bans/unbans sent to several hosts with their
// per-host state. Shown only when the server has the fleet API and fleet mode is on (404 fleet_disabled otherwise).
import {
  h, api, alive, may, box, num, time, muted, table, field, onSubmit, notice, statusBadge, plural, jailLink, VIEWS,
} from './core.js';

const HOST_STATUS = { up: 'ok', stale: 'warn', down: 'bad' };
const hostBadge = (s) => h('span', { class: 'badge ' + (HOST_STATUS[s] || '') }, s || '?');

VIEWS.hosts = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Hosts'));
  const list = h('div'), sent = h('div', { 'aria-live': 'polite' });
  let r;
  try { r = await api('fleetHosts'); } catch (e) {
    if (e.status === 404) { main.append(muted('Fleet mode is off on this server: it manages only its own fail2ban.')); return; }
    throw e;
  }
  if (!alive(ctx)) return;
  main.append(box('Hosts', list));
  let hosts = r.hosts || [];
  const draw = () => list.replaceChildren(table(hosts, [
    ['Host', (x) => h('span', { class: 'mono' }, x.name), '', (x) => x.name],
    ['Status', (x) => hostBadge(x.status), '', (x) => x.status],
    ['Last seen', (x) => time(x.last_seen), 'hide-sm', (x) => x.last_seen || ''],
    ['fail2ban', (x) => (x.fail2ban && x.fail2ban.reachable ? 'up ' + (x.fail2ban.version || '') : h('span', { class: 'bad' }, 'unreachable'))],
    ['Banned now', (x) => num((x.jails || []).reduce((a, j) => a + (j.currently_banned || 0), 0)), 'num', (x) => (x.jails || []).reduce((a, j) => a + (j.currently_banned || 0), 0)],
    ['Jails', (x) => h('span', {}, (x.jails || []).map((j, i) => [i ? ', ' : '', jailLink(j.name), ' ' + num(j.currently_banned)])), 'hide-sm'],
    ['Version', (x) => x.version || '—', 'hide-sm'],
  ], 'No host has reported yet.'));
  draw();
  ctx.refresh = async () => {
    const again = await api('fleetHosts');
    if (!alive(ctx)) return;
    hosts = again.hosts || [];
    draw();
  };
  if (may('fleetBan', 'operator')) main.append(box('Ban or unban on several hosts', sendForm(hosts, sent, ctx), sent));
};

function sendForm(hosts, out, ctx) {
  const ips = h('textarea', { rows: 3, spellcheck: 'false', placeholder: '203.0.113.7\n198.51.100.0/24', required: true });
  const names = [...new Set(hosts.flatMap((x) => (x.jails || []).map((j) => j.name)))].sort();
  const jail = h('select', { required: true }, names.map((n) => h('option', { value: n }, n)));
  const picks = hosts.map((x) => h('label', { class: 'row' }, h('input', { type: 'checkbox', checked: true, value: x.name }), x.name));
  const unban = h('input', { type: 'checkbox' });
  const form = h('form', { class: 'stack wide' }, field('Addresses or networks, one per line', ips), field('Jail', jail),
    h('fieldset', {}, h('legend', {}, 'Hosts'), h('div', { class: 'row' }, picks)), field('Unban instead of ban', unban),
    h('div', {}, h('button', { type: 'submit' }, 'Send')));
  onSubmit(form, async () => {
    const chosen = picks.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    const body = { ips: ips.value.split(/[\n,]+/).map((s) => s.trim()).filter(Boolean), jail: jail.value.trim() };
    if (chosen.length !== hosts.length) body.hosts = chosen;
    const r = unban.checked ? await api('fleetUnban', { body }) : await api('fleetBan', { body });
    notice((unban.checked ? 'Unban' : 'Ban') + ' sent to ' + plural((r.hosts || []).length, 'host') + '.');
    if (r.id != null) follow(r.id, out, ctx);
  });
  return form;
}

// the per-host state of one fleet ban, polled until no host is pending (or the view is left)
async function follow(id, out, ctx) {
  for (let i = 0; i < 60 && alive(ctx); i++) {
    const r = await api('fleetBanState', { params: { id } });
    const rows = Object.entries(r.hosts || {}).map(([name, s]) => ({ name, ...s }));
    out.replaceChildren(h('h3', {}, 'Request ' + id), table(rows, [['Host', (x) => x.name],
      ['State', (x) => statusBadge(x.status)], ['Error', (x) => x.error || '—']]));
    if (!rows.some((x) => x.status === 'pending')) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
