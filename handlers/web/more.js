// Issue 23: the Jails list (#/jails), repeat offenders (#/offenders) and the user's preferences (#/preferences).
import {
  h, api, state, alive, may, box, num, dur, time, muted, table, field, onSubmit, action, notice, ipLink, jailLink,
  country, plural, unavailable, setPrefs, VIEWS,
} from './core.js';

const badge = (cls, text) => h('span', { class: 'badge ' + cls }, text);

// Every jail: its state, counters, filter and actions, with links to its page (settings, controls, bans).
export async function jailList(main, ctx) {
  main.append(h('h1', {}, 'Jails'));
  const out = h('div', { class: 'reserve' });
  main.append(out);
  const sort = { by: 0, desc: false };
  const details = {}; // jail -> {filter, actions, idle} (read once per jail: they change only with its configuration)
  ctx.refresh = async () => {
    const [running, catalogue] = await Promise.all([api('jails'),
      may('configJails') ? api('configJails').catch(() => null) : null]);
    if (!alive(ctx)) return;
    const rows = running.jails.map((j) => ({ ...j, state: 'running' }));
    const names = new Set(rows.map((j) => j.name));
    for (const c of (catalogue && catalogue.jails) || []) {
      if (!names.has(c.name) && c.enabled) rows.push({ name: c.name, state: 'stopped', filter: c.filter });
    }
    await Promise.all(rows.filter((j) => j.state === 'running' && !details[j.name]).map((j) =>
      api('jail', { params: { jail: j.name }, query: { limit: 1 } }).then((d) => {
        details[j.name] = { filter: d.filter, actions: d.actions || [], idle: d.idle };
      }, () => {})));
    if (!alive(ctx)) return;
    for (const j of rows) Object.assign(j, details[j.name] || {});
    const stateOf = (j) => (j.state === 'stopped' ? badge('bad', 'stopped') : j.idle ? badge('warn', 'idle') : badge('ok', 'running'));
    const next = table(rows, [
      ['Jail', (j) => jailLink(j.name), '', (j) => j.name],
      ['State', stateOf, '', (j) => j.state + (j.idle ? '1' : '0')],
      ['Banned now', (j) => num(j.currently_banned), 'num', (j) => j.currently_banned ?? -1],
      ['Banned total', (j) => num(j.total_banned), 'num hide-sm', (j) => j.total_banned ?? -1],
      ['Failing now', (j) => num(j.currently_failed), 'num hide-sm', (j) => j.currently_failed ?? -1],
      ['Filter', (j) => h('span', { class: 'mono' }, j.filter || '—'), 'hide-sm', (j) => j.filter || ''],
      ['Actions', (j) => h('span', { class: 'mono small' }, (j.actions || []).join(', ') || '—'), 'hide-sm'],
      ['Settings', (j) => h('a', { href: '#/jails/' + encodeURIComponent(j.name), 'aria-label': 'Settings of ' + j.name }, 'Settings')],
    ], 'fail2ban has no jails.', Infinity, sort);
    const key = JSON.stringify(rows);
    if (out.dataset.key !== key) { out.dataset.key = key; swapKeepingFocus(out, next); }
  };
  await state.refreshNow();
}

// Replace a section's content; the focused control (same text and label) keeps the focus.
function swapKeepingFocus(container, next) {
  const a = document.activeElement;
  const sel = a && container.contains(a) ? [a.tagName, a.textContent, a.getAttribute('aria-label')] : null;
  container.replaceChildren(next);
  if (sel) {
    for (const el of container.querySelectorAll(sel[0])) {
      if (el.textContent === sel[1] && el.getAttribute('aria-label') === sel[2]) { el.focus({ preventScroll: true }); break; }
    }
  }
}

// --- repeat offenders (issue 23 item 5) ---
VIEWS.offenders = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Repeat offenders'));
  const q = ctx.query || {};
  const f = {
    min: h('input', { type: 'number', min: 2, max: 1000, value: q.min_bans || '3', class: 'narrow' }),
    days: h('input', { type: 'number', min: 1, max: 3650, value: q.days || '30', class: 'narrow' }),
    jail: h('select', {}, h('option', { value: '' }, 'any jail')),
  };
  const form = h('form', { class: 'inline', role: 'search' }, field('Banned at least (times)', f.min),
    field('In the last (days)', f.days), field('Jail', f.jail), h('button', { type: 'submit' }, 'Show'));
  const out = h('div', { class: 'reserve' });
  main.append(form, out);
  // the jails to ban them in, with each one's ban time: a ban lasts as long as its jail's bantime, so the longest
  // (permanent first: a recidive or blocklist jail) is offered first
  let jails = [];
  const known = api('jails').then(async (r) => {
    for (const j of r.jails) f.jail.append(h('option', { value: j.name, selected: j.name === q.jail }, j.name));
    const details = await Promise.all(r.jails.map((j) => api('jail', { params: { jail: j.name }, query: { limit: 1 } })
      .then((d) => ({ name: j.name, bantime: d.bantime }), () => ({ name: j.name, bantime: null }))));
    const rank = (b) => (b == null ? -2 : b < 0 ? Infinity : b);
    jails = details.sort((a, b) => rank(b.bantime) - rank(a.bantime) || a.name.localeCompare(b.name));
  }, () => {});
  const load = async () => {
    let r;
    try { r = await api('offenders', { query: { min_bans: f.min.value, days: f.days.value, jail: f.jail.value } }); } catch (e) {
      if (!unavailable(e)) throw e;
      out.replaceChildren(muted('Repeat offenders are not available on this server yet.'));
      return;
    }
    await known;
    if (!alive(ctx)) return;
    const rows = r.offenders || [];
    const target = h('select', {}, jails.map((j) => h('option', { value: j.name },
      j.name + (j.bantime == null ? '' : ' (bans ' + (j.bantime < 0 ? 'for good' : 'for ' + dur(j.bantime)) + ')'))));
    const banIn = (ips) => async () => {
      if (!target.value) throw new Error('Choose the jail to ban them in.');
      if (ips.length > 1 && !confirm('Ban ' + ips.length + ' addresses in ' + target.value + '?')) return;
      const res = await api('ban', { params: { jail: target.value }, body: { ips } });
      notice('Banned ' + plural(res.banned.length, 'address') + ' in ' + target.value +
        (res.already_banned.length ? '; already banned: ' + res.already_banned.join(', ') : '') + '.');
    };
    const cols = [['Address', (o) => ipLink(o.ip), '', (o) => o.ip], ['Country', (o) => country(o.country), 'hide-sm', (o) => o.country || ''],
      ['Bans', (o) => num(o.bans), 'num', (o) => o.bans], ['Jails', (o) => (o.jails || []).join(', '), 'hide-sm', (o) => (o.jails || []).join(',')],
      ['First ban', (o) => time(o.first_ban), 'hide-sm nowrap', (o) => o.first_ban], ['Last ban', (o) => time(o.last_ban), 'nowrap', (o) => o.last_ban]];
    if (may('ban')) cols.push(['', (o) => action('Ban', banIn([o.ip]), 'small', 'Ban ' + o.ip + ' in the chosen jail')]);
    out.replaceChildren(h('p', { class: 'muted' }, plural(rows.length, 'address') + ' banned at least ' + r.min_bans +
      ' times in the last ' + r.days + ' days.'),
    rows.length && may('ban') ? h('div', { class: 'row' }, field('Ban in jail', target, 'A ban lasts as long as the jail\'s ban time.'),
      action('Ban all ' + rows.length, banIn(rows.map((o) => o.ip)), 'danger small')) : null,
    table(rows, cols, 'No repeat offenders.', 200, { by: 2, desc: true }));
  };
  onSubmit(form, load);
  await load();
};

// --- preferences (issue 23 item 6) ---
VIEWS.preferences = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Preferences'));
  let p;
  try { p = await api('preferences'); } catch (e) {
    if (!unavailable(e)) throw e;
    main.append(muted('This server does not keep preferences yet.'));
    return;
  }
  if (!alive(ctx)) return;
  let zones = [];
  try { zones = Intl.supportedValuesOf('timeZone'); } catch (_) { zones = []; }
  const zone = h('input', { value: p.time_zone || 'UTC', list: 'zones', spellcheck: 'false', autocomplete: 'off' });
  const choice = (name, options, current) => h('select', { name }, options.map(([v, t]) => h('option', { value: v, selected: v === current }, t)));
  const fmt = choice('date_format', [['iso', 'ISO 8601 (2026-12-05 21:08:16)'], ['locale', "This browser's language"]], p.date_format);
  const relative = h('input', { type: 'checkbox', checked: !!p.relative_times });
  const theme = choice('theme', [['auto', 'As the system'], ['light', 'Light'], ['dark', 'Dark']], p.theme);
  const sample = h('p', { class: 'muted' });
  const showSample = () => sample.replaceChildren('A ban that ends in a day shows as: ', time(Date.now() / 1000 + 86400));
  showSample();
  const form = h('form', { class: 'stack' }, field('Time zone', zone, 'UTC or a name such as Europe/Berlin.'),
    h('datalist', { id: 'zones' }, zones.map((z) => h('option', { value: z }))), field('Date format', fmt),
    h('div', { class: 'row' }, relative, h('label', { for: relative.id = 'pref-relative' }, 'Relative times ("in 23 h")')),
    field('Theme', theme), h('div', {}, h('button', { type: 'submit' }, 'Save preferences')), sample);
  onSubmit(form, async () => {
    const saved = await api('savePreferences', { body: { time_zone: zone.value.trim() || 'UTC', date_format: fmt.value,
      relative_times: relative.checked, theme: theme.value } });
    setPrefs(saved);
    showSample();
    notice('Preferences saved: times now show ' + (saved.relative_times ? 'relative' : 'absolute') + ', in ' + saved.time_zone + '.');
  });
  main.append(box('Times and theme', form), muted('Kept on the server for your user: every browser you log in with uses them.'));
};
