// Dashboard (status, trend, bans by jail, top countries, world map) and History (filters, CSV, fast table).
import {
  h, api, apiPath, state, alive, box, card, num, dur, time, statusBadge, failed, muted, table, field, onSubmit,
  action, showError, unavailable, jailLink, ipLink, country, countryName, matches, hash, plural, VIEWS,
} from './core.js';
import { barChart, breakdown, worldMap } from './charts.js';
import { live } from './live.js';

// Swap a section's content and give the keyboard focus back to the same control (a map country, a sort button):
// live updates must not take it away (issue 23 item 2).
function swap(el, ...kids) {
  const a = document.activeElement;
  const key = a && el.contains(a) ? (a.dataset.cc ? '[data-cc="' + a.dataset.cc + '"]' : null) : null;
  const text = a && el.contains(a) && !key ? [a.tagName, a.textContent] : null;
  el.replaceChildren(...kids);
  let back = key ? el.querySelector(key) : null;
  if (text) back = [...el.querySelectorAll(text[0])].find((x) => x.textContent === text[1]) || null;
  if (back) back.focus({ preventScroll: true });
}

const RANGES = ['24h', '7d', '30d', '365d'];
let dashRange = '24h'; // kept while the page is open

// Range buttons; the pressed one follows clicks in place (a redraw would take the keyboard focus away).
function rangeButtons(current, pick) {
  const group = h('div', { class: 'row', role: 'group', 'aria-label': 'Range' });
  const mark = (now) => {
    for (const b of group.children) {
      b.className = b.textContent === now ? 'small' : 'secondary small';
      b.setAttribute('aria-pressed', String(b.textContent === now));
    }
  };
  group.append(...RANGES.map((rg) => h('button', { type: 'button', onclick: () => { mark(rg); pick(rg); } }, rg)));
  mark(current);
  return group;
}

VIEWS.dashboard = async (main, _args, ctx) => {
  performance.mark('dashboard-start');
  // every section holds its space from the start (no layout shift while the data arrives: issue 23 item 10)
  const cards = h('div', { class: 'cards' }, ['fail2ban', 'jails', 'banned now', 'banned in total', 'failing now',
    'failures in total'].map((l) => card('—', l)));
  const trend = h('div', { class: 'reserve-trend' }), jails = h('div', { class: 'reserve-list' });
  const countries = h('div', { class: 'reserve-list' }), map = h('div', { class: 'reserve-map' });
  const jailList = h('div', { class: 'reserve-list' });
  const ranges = h('div'), stamp = h('p', { class: 'muted small' });
  main.append(h('h1', {}, 'Dashboard'), box('fail2ban', cards),
    h('section', { class: 'box', 'aria-label': 'Bans over time' }, h('div', { class: 'row spread' }, h('h2', {}, 'Bans over time'), ranges), trend),
    h('div', { class: 'grid2' }, box('Bans by jail', jails), box('Top countries', countries)),
    box('Bans by country', map), box('Jails', jailList), stamp);
  const last = {};
  const jailSort = { by: -1, desc: false };
  // Redraw a section only when its data changed: keeps the DOM (and keyboard focus) otherwise.
  const changed = (key, x) => {
    const k = JSON.stringify(x.status === 'fulfilled' ? x.value : x.reason && x.reason.message);
    if (k === last[key]) return false;
    last[key] = k;
    return true;
  };
  const pickRange = (rg) => { dashRange = rg; ctx.refresh().catch(showError); };
  ranges.append(rangeButtons(dashRange, pickRange));
  ctx.refresh = async () => {
    const [s, st, jl] = await Promise.allSettled([api('server'), api('stats', { query: { range: dashRange } }), api('jails')]);
    if (!alive(ctx)) return;
    stamp.textContent = 'Updated ' + new Date().toLocaleTimeString() + (live.open ? '; live.' : '; refreshes every 5 s while this tab is visible.');
    if (changed('server', s)) {
      if (s.value) {
        const v = s.value;
        cards.replaceChildren(
          h('div', { class: 'card' }, h('div', { class: 'n ok' }, 'up'), h('div', { class: 'l' }, 'fail2ban ' + (v.version || ''))),
          card(v.jail_count, 'jails'), card(v.currently_banned, 'banned now'), card(v.total_banned, 'banned in total'),
          card(v.currently_failed, 'failing now'), card(v.total_failed, 'failures in total'));
      } else {
        cards.replaceChildren(h('div', { class: 'card' }, h('div', { class: 'n bad' }, 'down'), h('div', { class: 'l' }, 'fail2ban')),
          h('p', { class: 'bad wide' }, (s.reason && s.reason.message) || 'fail2ban does not answer.'));
      }
    }
    if (changed('jails', jl)) {
      swap(jailList, jl.value ? table(jl.value.jails, [
        ['Jail', (r) => jailLink(r.name), '', (r) => r.name],
        ['Banned now', (r) => num(r.currently_banned), 'num', (r) => r.currently_banned],
        ['Banned total', (r) => num(r.total_banned), 'num hide-sm', (r) => r.total_banned],
        ['Failing now', (r) => num(r.currently_failed), 'num', (r) => r.currently_failed],
        ['Failures total', (r) => num(r.total_failed), 'num hide-sm', (r) => r.total_failed],
      ], 'fail2ban has no jails.', 1000, jailSort) : failed(jl.reason));
    }
    if (!changed('stats', st)) return;
    if (!st.value) {
      const why = unavailable(st.reason) ? muted('Statistics are not available on this server.') : failed(st.reason);
      for (const el of [trend, jails, countries, map]) el.replaceChildren(why.cloneNode(true));
      return;
    }
    const v = st.value;
    swap(trend, v.trend && v.trend.length ? barChart(v.trend, dashRange) : muted('No events in this range.'));
    swap(jails, breakdown(v.by_jail || []));
    swap(countries, breakdown(v.top_countries || []));
    const counts = {};
    for (const c of v.by_country || v.top_countries || []) if (c.country) counts[c.country] = c.bans ?? c.count;
    performance.mark('map-start');
    swap(map, worldMap(counts, (cc) => { location.hash = hash('history') + '?country=' + encodeURIComponent(cc); }));
    performance.measure('map', 'map-start');
  };
  await state.refreshNow();
  performance.measure('dashboard', 'dashboard-start');
};

// --- history ---
const ORIGINS = ['auto', 'manual', 'blocklist', 'fleet'];
const select = (values, label, current) => h('select', {}, h('option', { value: '' }, label),
  values.map(([v, text]) => h('option', { value: v, selected: v === current }, text)));

VIEWS.history = async (main, _args, ctx) => {
  const q = ctx.query || {};
  main.append(h('h1', {}, 'History'));
  const stats = h('div'), results = h('div'), more = h('div'), count = h('p', { class: 'muted small' });
  let range = '24h';
  const loadStats = async () => {
    let s;
    try { s = await api('stats', { query: { range } }); } catch (e) {
      if (!unavailable(e)) throw e;
      stats.replaceChildren(muted('Statistics not available on this server.'));
      return;
    }
    if (!alive(ctx)) return;
    statsBody.replaceChildren(s.trend && s.trend.length ? barChart(s.trend, range) : muted('No events in this range.'),
      h('div', { class: 'grid2' }, [['By jail', s.by_jail], ['Top addresses', s.top_ips], ['Top countries', s.top_countries],
        ['By origin', s.by_origin]].filter(([, d]) => d != null).map(([t, d]) => h('div', {}, h('h3', {}, t), breakdown(d)))));
  };
  const statsBody = h('div');
  stats.append(rangeButtons(range, (rg) => { range = rg; loadStats().catch(showError); }), statsBody);
  main.append(box('Statistics', stats));

  const f = {
    since: h('input', { type: 'datetime-local', step: 1 }), until: h('input', { type: 'datetime-local', step: 1 }),
    jail: select([], 'any jail', q.jail), ip: h('input', { size: 18, spellcheck: 'false', value: q.ip || '' }),
    origin: select(ORIGINS.map((o) => [o, o]), 'any origin', q.origin),
    event: select([['ban', 'ban'], ['unban', 'unban']], 'any event', q.event),
    country: h('input', { size: 14, spellcheck: 'false', value: q.country ? countryName(q.country) : '', list: 'countries',
      placeholder: 'any country' }),
    limit: h('input', { type: 'number', min: 1, max: 1000, value: q.limit || '100', style: 'width:6em' }),
  };
  f.country.dataset.code = q.country || '';
  const countryList = h('datalist', { id: 'countries' });
  const csv = h('a', { class: 'button secondary', download: 'bangui-history.csv' }, 'Download CSV');
  const form = h('form', { class: 'inline', role: 'search' },
    field('Since', f.since), field('Until', f.until), field('Jail', f.jail), field('IP or network', f.ip),
    field('Event', f.event), field('Origin', f.origin), field('Country', f.country), field('Rows', f.limit),
    h('button', { type: 'submit' }, 'Apply'), csv, countryList);
  api('jails').then((r) => {
    for (const j of r.jails) f.jail.append(h('option', { value: j.name, selected: j.name === q.jail }, j.name));
  }, () => {});
  api('stats', { query: { range: '365d' } }).then((s) => {
    for (const c of s.by_country || s.top_countries || []) if (c.country) countryList.append(h('option', { value: countryName(c.country) }, c.country));
  }, () => {});
  // the country box takes a name ("Germany") or a code ("DE")
  const countryCode = () => {
    const v = f.country.value.trim();
    if (!v) return '';
    if (/^[A-Za-z]{2}$/.test(v)) return v.toUpperCase();
    if (f.country.dataset.code && countryName(f.country.dataset.code) === v) return f.country.dataset.code;
    for (const o of countryList.options) if (o.value.toLowerCase() === v.toLowerCase()) return o.textContent;
    return v;
  };
  const iso = (v) => { const d = v ? new Date(v) : null; return d && !isNaN(d) ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : ''; };
  const filters = () => ({ since: iso(f.since.value), until: iso(f.until.value), jail: f.jail.value,
    ip: f.ip.value.trim(), origin: f.origin.value, event: f.event.value, country: countryCode() });
  const rows = [];
  const cols = [['When', (r) => time(r.at), '', (r) => r.at], ['Event', (r) => statusBadge(r.event), '', (r) => r.event],
    ['Address', (r) => ipLink(r.ip), '', (r) => r.ip], ['Jail', (r) => jailLink(r.jail), '', (r) => r.jail],
    ['Ban time', (r) => (r.event === 'ban' ? dur(r.bantime) : '—'), 'hide-sm', (r) => r.bantime ?? -2],
    ['Failures', (r) => num(r.failures), 'num hide-sm', (r) => r.failures ?? -1], ['Origin', (r) => (r.source_host ? r.origin + ' from ' + r.source_host : r.origin || '—'), 'hide-sm', (r) => r.origin || ''],
    ['By', (r) => r.actor || '—', 'hide-sm', (r) => r.actor || ''], ['Country', (r) => country(r.country), 'hide-sm', (r) => countryName(r.country) || ''],
    ['Log lines', (r) => matches(r.matches), 'hide-sm']];
  let q0 = {}; // the applied filters: "load more" continues them even if the form was edited since
  const load = async (cursor) => {
    if (!cursor) q0 = { ...filters(), limit: f.limit.value };
    let r;
    try { r = await api('history', { query: { ...q0, cursor } }); } catch (e) {
      if (!unavailable(e)) throw e;
      results.replaceChildren(muted('History not available on this server.'));
      form.hidden = true;
      return;
    }
    if (!alive(ctx)) return;
    if (!cursor) rows.length = 0;
    rows.push(...(r.items || []));
    const t0 = performance.now();
    results.replaceChildren(table(rows, cols, 'No events match.'));
    performance.measure('history-build', { start: t0 });
    // to the next frame: DOM, style and layout of the rows (what the user waits for)
    requestAnimationFrame(() => setTimeout(() => performance.measure('history-render', { start: t0 })));
    count.textContent = plural(rows.length, 'event') + (r.next_cursor ? ' (more available)' : '');
    more.replaceChildren(r.next_cursor ? action('Load more', () => load(r.next_cursor), 'secondary') : '');
  };
  const updateCsv = () => { csv.href = apiPath('history', {}, { ...filters(), format: 'csv' }); };
  form.addEventListener('input', updateCsv);
  updateCsv();
  onSubmit(form, () => load());
  main.append(box('Events', form, count, results, more));
  await Promise.all([loadStats(), load()]);
};
