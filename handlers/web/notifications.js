// Notification targets (admin): list with each one's last delivery, add (each format with its fields), send a
// test, pause/resume, delete. Delivery itself runs on the leader (jobs/notify.py); this screen only asks.
import { h, api, alive, field, onSubmit, action, notice, table, time, num, statusBadge, box, adminsOnly, VIEWS } from './core.js';

const FORMATS = {
  json: 'JSON webhook (every event, for scripts)',
  ntfy: 'ntfy (URL: your server and topic, /<topic>)',
  gotify: 'gotify (URL: your server with /message?token=<app token>)',
  slack: 'Slack incoming webhook',
  discord: 'Discord webhook',
};
const EVENTS = ['ban', 'unban', 'config.change', 'login.failed', 'fail2ban.down', 'fail2ban.up', 'leader.change',
  'blocklist.failed'];

VIEWS.notifications = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Notifications'));
  if (adminsOnly(main, 'only admins manage notifications.')) return;
  const name = h('input', { required: true, maxlength: 64, spellcheck: 'false', pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]*' });
  const url = h('input', { type: 'url', required: true, placeholder: 'https://...', spellcheck: 'false', maxlength: 2048 });
  const format = h('select', {}, Object.entries(FORMATS).map(([v, label]) => h('option', { value: v }, label)));
  const picks = EVENTS.map((e) => h('input', { type: 'checkbox', value: e, checked: e === 'ban' }));
  const events = h('fieldset', {}, h('legend', {}, 'Events'),
    ...picks.map((cb) => h('label', { class: 'check' }, cb, ' ', cb.value)));
  const jails = h('input', { placeholder: 'all jails', spellcheck: 'false' });
  const every = h('input', { type: 'number', min: 0, max: 86400, value: 30, style: 'width:6em' });
  const form = h('form', { class: 'inline' }, field('Name', name), field('Format', format),
    field('URL', url, 'The URL is kept secret: only scheme, host and port are shown back.'), events,
    field('Jails (comma-separated)', jails, 'Limits ban and unban events; empty: every jail.'),
    field('At most one message every (s)', every), h('button', { type: 'submit' }, 'Add target'));
  const list = h('div');
  let last = '';
  const load = async (force = false) => {
    const r = await api('notifications');
    const key = JSON.stringify(r.notifications);
    if (!alive(ctx) || (key === last && !force)) return;
    last = key;
    list.replaceChildren(table(r.notifications, [
      ['Name', (t) => h('div', {}, h('span', { class: 'mono' }, t.name), h('div', { class: 'mono small url muted' }, t.url))],
      ['Format', (t) => t.format, 'hide-sm'],
      ['Events', (t) => t.events.join(', ') + (t.jails.length ? ' (jails: ' + t.jails.join(', ') + ')' : ''), 'hide-sm'],
      ['State', (t) => (t.enabled ? h('span', { class: 'badge' }, 'active') : h('span', { class: 'badge warn' }, 'paused'))],
      ['Last delivery', (t) => (t.last_status
        ? h('div', {}, statusBadge(t.last_status), ' ', time(t.last_attempt), t.last_error ? h('pre', { class: 'err' }, t.last_error) : '')
        : h('span', { class: 'muted' }, 'nothing sent yet'))],
      ['Delivered', (t) => num(t.delivered) + ' (' + num(t.pending) + ' waiting)', 'num hide-sm'],
      ['', (t) => h('div', { class: 'row' },
        action('Send test', async () => {
          const res = await api('testNotification', { params: { name: t.name } });
          notice('Test for ' + t.name + ' asked' + (res && res.leader_pid ? ' (leader pid ' + res.leader_pid + ').' : '; no leader right now, the next one sends it.'));
          setTimeout(() => load(), 2500);
        }, 'small', 'Send test to ' + t.name),
        action(t.enabled ? 'Pause' : 'Resume', async () => {
          await api('changeNotification', { params: { name: t.name }, body: { enabled: !t.enabled } });
          notice('Target ' + t.name + (t.enabled ? ' paused.' : ' resumed.'));
          await load(true);
        }, 'secondary small', (t.enabled ? 'Pause ' : 'Resume ') + t.name),
        action('Delete', async () => {
          if (!confirm('Delete the notification target "' + t.name + '" and its waiting events?')) return;
          await api('deleteNotification', { params: { name: t.name } });
          notice('Target ' + t.name + ' deleted.');
          await load(true);
        }, 'danger small', 'Delete ' + t.name))],
    ], 'No notification targets.'));
  };
  onSubmit(form, async () => {
    const body = { name: name.value.trim(), url: url.value.trim(), format: format.value,
      events: picks.filter((cb) => cb.checked).map((cb) => cb.value),
      jails: jails.value.split(',').map((j) => j.trim()).filter(Boolean), min_interval_s: Number(every.value || 0) };
    const r = await api('newNotification', { body });
    notice('Target ' + r.name + ' added.');
    name.value = url.value = jails.value = '';
    await load(true);
  });
  main.append(box('Add a target', form), box('Targets', list));
  ctx.refresh = load;
  await load();
};
