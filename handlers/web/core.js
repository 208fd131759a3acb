// bangui web page, shared parts: the API table and client, DOM helpers (text only), formatting, tables.
// Server data is rendered as text (textContent / text nodes), never parsed as HTML.

export const API = '/api/v1';
// Every API call the page makes: [method, path]. tests/handlers/test_web.py checks them against the
// OpenAPI document, so add new calls here, not as ad-hoc fetches. Calls to routes that a build may not
// have yet (issues 9 and 10) are in OPTIONAL there; the page hides their sections (see has()).
export const EP = {
  setupState: ['GET', '/setup'],
  setup: ['POST', '/setup'],
  login: ['POST', '/auth/login'],
  logout: ['POST', '/auth/logout'],
  session: ['GET', '/auth/session'],
  logoutAll: ['DELETE', '/auth/sessions'],
  openapi: ['GET', '/openapi.json'],
  server: ['GET', '/server'],
  health: ['GET', '/health'],
  jails: ['GET', '/jails'],
  jail: ['GET', '/jails/{jail}'],
  ban: ['POST', '/jails/{jail}/bans'],
  unban: ['DELETE', '/jails/{jail}/bans/{ip}'],
  bans: ['GET', '/bans'],
  unbanAll: ['DELETE', '/bans/{ip}'],
  ip: ['GET', '/ips/{ip}'],
  history: ['GET', '/history'],
  stats: ['GET', '/stats'],
  jobs: ['GET', '/jobs'],
  runJob: ['POST', '/jobs/{name}/run'],
  blocklists: ['GET', '/blocklists'],
  newBlocklist: ['POST', '/blocklists'],
  runBlocklist: ['POST', '/blocklists/{name}/run'],
  deleteBlocklist: ['DELETE', '/blocklists/{name}'],
  notifications: ['GET', '/notifications'],
  newNotification: ['POST', '/notifications'],
  changeNotification: ['PATCH', '/notifications/{name}'],
  deleteNotification: ['DELETE', '/notifications/{name}'],
  testNotification: ['POST', '/notifications/{name}/test'],
  tokens: ['GET', '/tokens'],
  newToken: ['POST', '/tokens'],
  revokeToken: ['DELETE', '/tokens/{id}'],
  bouncers: ['GET', '/bouncers'],
  newBouncer: ['POST', '/bouncers'],
  deleteBouncer: ['DELETE', '/bouncers/{name}'],
  users: ['GET', '/users'],
  newUser: ['POST', '/users'],
  changeUser: ['PATCH', '/users/{name}'],
  deleteUser: ['DELETE', '/users/{name}'],
  // issue 10: jail control and configuration
  jailStart: ['POST', '/jails/{jail}/start'],
  jailStop: ['POST', '/jails/{jail}/stop'],
  jailReload: ['POST', '/jails/{jail}/reload'],
  jailIdle: ['PUT', '/jails/{jail}/idle'],
  jailUnbanAll: ['DELETE', '/jails/{jail}/bans'],
  jailSettings: ['PATCH', '/jails/{jail}'],
  ignoreAdd: ['POST', '/jails/{jail}/ignoreip'],
  ignoreRemove: ['DELETE', '/jails/{jail}/ignoreip/{entry}'],
  serverSettings: ['GET', '/server/settings'],
  changeServerSettings: ['PATCH', '/server/settings'],
  serverReload: ['POST', '/server/reload'],
  configJails: ['GET', '/config/jails'],
  activate: ['POST', '/config/jails/{jail}/activate'],
  deactivate: ['POST', '/config/jails/{jail}/deactivate'],
  configFiles: ['GET', '/config/files'],
  configFile: ['GET', '/config/files/{path}'],
  saveConfigFile: ['PUT', '/config/files/{path}'],
  deleteConfigFile: ['DELETE', '/config/files/{path}'],
  changes: ['GET', '/config/changes'],
  revert: ['POST', '/config/changes/{id}/revert'],
  filterTest: ['POST', '/filters/test'],
  logs: ['GET', '/logs'],
  logStream: ['GET', '/logs/stream'],
  // issue 9: audit log
  audit: ['GET', '/audit'],
  auditVerify: ['GET', '/audit/verify'],
  // issue 14: fleet mode
  fleetHosts: ['GET', '/fleet/hosts'],
  fleetBan: ['POST', '/fleet/bans'],
  fleetUnban: ['POST', '/fleet/unbans'],
  fleetBanState: ['GET', '/fleet/bans/{id}'],
};
export const ROLES = ['viewer', 'operator', 'admin'];
const ROW_LIMIT = 1000;

// The session and the view on screen; app.js owns them, views read them.
// fleet: is fleet mode on (issue 14)? null until /health has said (see fleetMode()).
export const state = { me: null, current: {}, paths: null, fleet: null, route: () => {}, sessionEnded: () => {} };

// ---------- DOM helpers (text only) ----------
export const $ = (id) => document.getElementById(id);

export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  if (props) {
    for (const k in props) {
      const v = props[k];
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'style') el.style.cssText = v; // CSSOM, allowed by the CSP (a style attribute is not)
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
export const hash = (...segs) => '#/' + segs.map(encodeURIComponent).join('/');
export const link = (text, ...segs) => h('a', { href: hash(...segs) }, text);
export const ipLink = (ip) => h('a', { href: hash('ips', ip), class: 'mono' }, ip);
export const jailLink = (jail) => link(jail, 'jails', jail);
export const can = (role) => !!state.me && ROLES.indexOf(state.me.role) >= ROLES.indexOf(role);
export const alive = (ctx) => ctx === state.current;
// Does this server have the route? (sections for APIs a build lacks are hidden, not broken)
const operation = (key) => state.paths && (state.paths[API + EP[key][1]] || {})[EP[key][0].toLowerCase()];
export const has = (key) => !state.paths || !!operation(key);
// May the user call it? (the route exists and the user's role is at least the one the OpenAPI document names)
export function may(key, fallback = 'admin') {
  if (!state.paths) return can(fallback);
  const op = operation(key);
  return !!op && can(op['x-required-role'] === 'public' ? 'viewer' : op['x-required-role'] || fallback);
}

// Fleet mode is on when /health has a `fleet` part (null without BANGUI_FLEET_URL). The Hosts link shows only then.
export function noteHealth(v) {
  state.fleet = !!(v && v.fleet);
  const a = $('nav').querySelector('a[data-view="hosts"]');
  if (a) a.hidden = !state.fleet;
}
let asking = null;
export async function fleetMode() {
  if (state.fleet == null && has('health')) {
    asking = asking || api('health').then(noteHealth, () => {}).finally(() => { asking = null; });
    await asking;
  }
  return state.fleet;
}

let fieldIds = 0;
export function field(label, input, hint) {
  const id = input.id || (input.id = 'f' + ++fieldIds);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input,
    hint ? h('div', { class: 'muted small' }, hint) : null);
}

// ---------- formatting ----------
// One formatter each (creating an Intl formatter per cell cost ~1 ms: 1,000 history rows took 1.3 s).
const DATE = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit',
  minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
const DAY = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const HOUR = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' });
const NUM = new Intl.NumberFormat();
let REGIONS = null;
try { REGIONS = new Intl.DisplayNames(undefined, { type: 'region' }); } catch (_) { REGIONS = null; }

export function toDate(v) {
  if (v == null || v === '') return null;
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  return isNaN(d) ? null : d;
}
export const fmtDate = (d, style = 'full') => (style === 'day' ? DAY : style === 'hour' ? HOUR : DATE).format(d);
export function time(v, empty = '—') {
  const d = toDate(v);
  if (!d) return v == null || v === '' ? empty : String(v);
  const el = document.createElement('time');
  el.dateTime = d.toISOString();
  el.title = el.dateTime;
  el.textContent = DATE.format(d);
  return el;
}
export function rel(v) {
  const d = toDate(v);
  if (!d) return '—';
  const s = Math.round((d - Date.now()) / 1000);
  const txt = dur(Math.abs(s));
  return h('time', { datetime: d.toISOString(), title: DATE.format(d) }, s >= 0 ? 'in ' + txt : txt + ' ago');
}
export function dur(sec) {
  if (sec == null || sec === '') return '—';
  sec = Number(sec);
  if (isNaN(sec)) return '—';
  if (sec < 0) return 'permanent';
  if (sec < 60) return (Math.round(sec * 10) / 10) + ' s';
  const parts = [];
  for (const [n, u] of [[86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']]) {
    if (sec >= n) { parts.push(Math.floor(sec / n) + u); sec %= n; }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}
// "1 event", "2 events"
export const plural = (n, word) => num(n) + ' ' + (n === 1 ? word : word.endsWith('y') ? word.slice(0, -1) + 'ies' : word + 's');
export const num = (n) => (typeof n === 'number' ? NUM.format(n) : n == null ? '—' : String(n));
export const expires = (v) => (v == null ? h('span', { class: 'badge warn' }, 'permanent') : time(v));
// "DE" -> "Germany" (the browser's own list of region names; the code stays as a tooltip)
export function countryName(cc) {
  if (!cc) return null;
  try { return (REGIONS && REGIONS.of(String(cc).toUpperCase())) || cc; } catch (_) { return cc; }
}
export const country = (cc) => (cc ? h('span', { title: cc }, countryName(cc)) : '—');

// ---------- messages ----------
// `from`: who showed it ('refresh': a view's periodic refresh, whose next success takes the message away)
export function showError(e, from = '') {
  if (e && e.status === 401 && e.handled) return;
  $('banner').dataset.from = from;
  let text = (e && e.message) || String(e);
  const bad = e && e.details && e.details.invalid;
  if (Array.isArray(bad) && bad.length) text = 'Nothing was done: not an IP address or network:\n' + bad.join('\n');
  // a configuration change that fail2ban could not run: bangui restored the previous files (issue 10)
  if (e && e.code === 'apply_failed') text = 'The change failed and was rolled back; fail2ban runs the previous configuration.\n' + text;
  if (e && e.code === 'config_invalid') text = 'fail2ban refused the change; nothing was changed.\n' + text;
  const tail = e && e.details && e.details.log_tail;
  const log = tail && tail.length ? h('details', { class: 'tail' }, h('summary', {}, "The end of fail2ban's log"),
    h('pre', {}, [].concat(tail).join('\n'))) : null;
  $('banner-text').replaceChildren(text, ...(log ? [log] : []));
  $('banner').hidden = false;
}
export function hideBanner() { $('banner').hidden = true; }
let noticeTimer = null;
export function notice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 8000);
}

// ---------- API ----------
export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    Object.assign(this, { status, code, details: details || {}, retryAfter });
  }
}

// calls whose 401 means "not logged in (yet)", not "your session ended"
const QUIET_401 = new Set(['login', 'setup', 'setupState', 'session', 'openapi']);
const SLASHED = new Set(['ip', 'path', 'entry']); // networks and config paths keep their '/'
export function apiPath(key, params = {}, query = null) {
  const path = EP[key][1].replace(/\{(\w+)\}/g, (_, name) => {
    const v = String(params[name]);
    return SLASHED.has(name) ? v.split('/').map(encodeURIComponent).join('/') : encodeURIComponent(v);
  });
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '' && v != null)) : null;
  return API + path + (qs && String(qs) ? '?' + qs : '');
}

// api(key, {params, query, body, headers, text}): the decoded JSON answer, or with text:true {text, etag}.
export async function api(key, { params, query, body, headers, text: asText } = {}) {
  const opts = { method: EP[key][0], credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(apiPath(key, params, query), opts);
  } catch (err) {
    throw new ApiError(0, 'network', 'cannot reach the server: ' + err.message);
  }
  let data = null;
  const text = r.status === 204 ? '' : await r.text();
  if (r.ok && asText) {
    // a file's text: JSON {content} or the plain text itself
    let content = text;
    if ((r.headers.get('content-type') || '').includes('json')) {
      try { const j = JSON.parse(text); content = typeof j === 'string' ? j : j.content ?? j.text ?? ''; } catch (_) { /* as is */ }
    }
    return { text: content, etag: r.headers.get('ETag') };
  }
  if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
  if (!r.ok) {
    const err = (data && data.error) || {};
    const e = new ApiError(r.status, err.code || 'http_' + r.status,
      err.message || 'request failed: HTTP ' + r.status, err.details, r.headers.get('Retry-After'));
    if (r.status === 401 && !QUIET_401.has(key)) {
      e.handled = true;
      state.sessionEnded();
    }
    throw e;
  }
  return data;
}

// ---------- controls ----------
// A submit handler that disables the form's buttons while it runs and shows errors in the banner; fn gets the
// button that submitted (a form with two actions tells them apart by its value).
export function onSubmit(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btns = form.querySelectorAll('button');
    btns.forEach((b) => { b.disabled = true; });
    hideBanner();
    try { await fn(ev.submitter); } catch (e) { showError(e); } finally { btns.forEach((b) => { if (!b.dataset.locked) b.disabled = false; }); }
  });
  return form;
}
// A button that runs fn (disabled meanwhile).
export function action(label, fn, cls = 'small', ariaLabel = null) {
  const b = h('button', { type: 'button', class: cls, 'aria-label': ariaLabel }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    hideBanner();
    try { await fn(b); } catch (e) { showError(e); } finally { b.disabled = false; }
  });
  return b;
}
// Unban ip in one jail, or in every jail (jail null); then() after success (views re-read their data:
// counters and lists change with an unban).
export const unbanBtn = (ip, jail, then, label = 'Unban') => action(label, async () => {
  const r = await (jail ? api('unban', { params: { jail, ip } }) : api('unbanAll', { params: { ip } }));
  notice('Unbanned ' + ip + (jail ? ' in ' + jail : ' from ' + r.unbanned_from.join(', ')) + '.');
  await then();
}, 'danger small', label + ' ' + ip + (jail ? ' in ' + jail : ' in every jail'));

// ---------- tables ----------
// columns: [label, row => cell, className?, row => sort key?]; a column with a sort key gets a header
// button that sorts by it. At most ROW_LIMIT rows are drawn unless asked for all. Rows are built into a
// fragment and attached once (one layout for the whole table). `sort` ({by, desc}, kept by the caller) keeps the
// user's order across the redraws of a refreshing view.
export function table(rows, columns, empty = 'Nothing here.', first = ROW_LIMIT, sort = null) {
  const wrap = h('div', { class: 'tablewrap' });
  let sortBy = sort ? sort.by : -1, desc = sort ? sort.desc : false, limit = first;
  const draw = () => {
    if (sort) Object.assign(sort, { by: sortBy, desc });
    if (!rows.length) { wrap.replaceChildren(muted(empty)); return; }
    let list = rows;
    if (sortBy >= 0) {
      const key = columns[sortBy][3];
      list = rows.map((r) => [key(r), r]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((x) => x[1]);
      if (desc) list.reverse();
    }
    const shown = list.length > limit ? list.slice(0, limit) : list;
    const head = h('tr', {}, columns.map(([label, , cls, key], i) => h('th', {
      scope: 'col', class: cls, 'aria-sort': i === sortBy ? (desc ? 'descending' : 'ascending') : null,
    }, key ? h('button', { type: 'button', class: 'sort', onclick: () => { desc = sortBy === i ? !desc : false; sortBy = i; draw(); } },
      label, i === sortBy ? (desc ? ' ▼' : ' ▲') : '') : label)));
    const body = document.createElement('tbody');
    const frag = document.createDocumentFragment();
    for (const r of shown) {
      const tr = document.createElement('tr');
      for (const [, cell, cls] of columns) {
        const td = document.createElement('td');
        if (cls) td.className = cls;
        const v = cell(r);
        if (v != null && v !== false) td.append(v instanceof Node ? v : String(v));
        tr.append(td);
      }
      frag.append(tr);
    }
    body.append(frag);
    const t = h('table', {}, h('thead', {}, head), body);
    wrap.replaceChildren(t);
    if (list.length > shown.length) {
      wrap.append(h('p', {}, 'Showing ' + shown.length + ' of ' + list.length + '. ',
        h('button', { type: 'button', class: 'secondary small', onclick: () => { limit = Infinity; draw(); } }, 'Show all')));
    }
  };
  draw();
  return wrap;
}

// A table with a text filter above it (matches any of the given fields).
export function filtered(rows, columns, keys, empty, first = ROW_LIMIT) {
  const out = h('div');
  const input = h('input', { type: 'search', placeholder: 'filter', 'aria-label': 'Filter rows' });
  const draw = () => {
    const q = input.value.trim().toLowerCase();
    const sel = q ? rows.filter((r) => keys.some((k) => String(r[k] ?? '').toLowerCase().includes(q))) : rows;
    out.replaceChildren(table(sel, columns, q ? 'No match.' : empty, first));
  };
  input.addEventListener('input', draw);
  draw();
  return h('div', {}, rows.length > 10 ? h('p', {}, input) : null, out);
}

// kv(label, value, label, value...) -> a definition list
export function kv(...pairs) {
  const dl = h('dl', { class: 'kv' });
  for (let i = 0; i < pairs.length; i += 2) dl.append(h('dt', {}, pairs[i]), h('dd', {}, pairs[i + 1]));
  return dl;
}
// log lines of an event: a closed <details> whose text is only built when opened (1,000 rows stay cheap)
export function matches(lines) {
  if (!lines || !lines.length) return '—';
  const pre = h('pre');
  const d = h('details', {}, h('summary', {}, lines.length + (lines.length === 1 ? ' line' : ' lines')), pre);
  d.addEventListener('toggle', () => { if (!pre.firstChild) pre.textContent = lines.map(String).join('\n'); });
  return d;
}
const BADGE = { ok: 'ok', applied: 'ok', pending: 'warn', running: 'warn', degraded: 'bad', error: 'bad', timeout: 'bad', ban: 'bad', unban: 'ok',
  denied: 'warn', failed: 'bad' };
export const statusBadge = (s) => h('span', { class: 'badge ' + (BADGE[s] || '') }, s == null ? 'never' : s);
export const card = (n, label) => h('div', { class: 'card' }, h('div', { class: 'n' }, num(n)), h('div', { class: 'l' }, label));
export const box = (title, ...kids) => h('section', { class: 'box', 'aria-label': title }, h('h2', {}, title), ...kids);
export const muted = (text) => h('p', { class: 'muted' }, text);
export const failed = (e) => h('p', { class: 'bad' }, 'Unavailable: ' + ((e && e.message) || e));
export const unavailable = (e) => e && e.status === 404;
export const VIEWS = {};
