// bangui web page, shared parts: the API table and client, DOM helpers (text only), formatting, tables.
// Server data is rendered as text (textContent / text nodes), never parsed as HTML.

export const API = '/api/v1';
// Every API call the page makes: [method, path, role]. tests/handlers/test_web.py checks them against the
// OpenAPI document (path, method and the role it requires), so add new calls here, not as ad-hoc fetches: the page
// knows what a role may do without downloading that document (issue 23 item 9). Calls to routes that a build may
// not have yet are in OPTIONAL there; a 404 from such a route hides its section (see has()).
export const EP = {
  setupState: ['GET', '/setup', 'public'],
  setup: ['POST', '/setup', 'public'],
  login: ['POST', '/auth/login', 'public'],
  logout: ['POST', '/auth/logout', 'viewer'],
  session: ['GET', '/auth/session', 'viewer'],
  logoutAll: ['DELETE', '/auth/sessions', 'viewer'],
  server: ['GET', '/server', 'viewer'],
  health: ['GET', '/health', 'viewer'],
  jails: ['GET', '/jails', 'viewer'],
  jail: ['GET', '/jails/{jail}', 'viewer'],
  ban: ['POST', '/jails/{jail}/bans', 'operator'],
  unban: ['DELETE', '/jails/{jail}/bans/{ip}', 'operator'],
  bans: ['GET', '/bans', 'viewer'],
  unbanAll: ['DELETE', '/bans/{ip}', 'operator'],
  ip: ['GET', '/ips/{ip}', 'viewer'],
  history: ['GET', '/history', 'viewer'],
  stats: ['GET', '/stats', 'viewer'],
  jobs: ['GET', '/jobs', 'viewer'],
  runJob: ['POST', '/jobs/{name}/run', 'operator'],
  blocklists: ['GET', '/blocklists', 'viewer'],
  newBlocklist: ['POST', '/blocklists', 'admin'],
  runBlocklist: ['POST', '/blocklists/{name}/run', 'operator'],
  deleteBlocklist: ['DELETE', '/blocklists/{name}', 'admin'],
  notifications: ['GET', '/notifications', 'admin'],
  newNotification: ['POST', '/notifications', 'admin'],
  changeNotification: ['PATCH', '/notifications/{name}', 'admin'],
  deleteNotification: ['DELETE', '/notifications/{name}', 'admin'],
  testNotification: ['POST', '/notifications/{name}/test', 'admin'],
  tokens: ['GET', '/tokens', 'viewer'],
  newToken: ['POST', '/tokens', 'viewer'],
  revokeToken: ['DELETE', '/tokens/{id}', 'viewer'],
  bouncers: ['GET', '/bouncers', 'admin'],
  newBouncer: ['POST', '/bouncers', 'admin'],
  deleteBouncer: ['DELETE', '/bouncers/{name}', 'admin'],
  users: ['GET', '/users', 'admin'],
  newUser: ['POST', '/users', 'admin'],
  changeUser: ['PATCH', '/users/{name}', 'admin'],
  deleteUser: ['DELETE', '/users/{name}', 'admin'],
  // issue 10: jail control and configuration
  jailStart: ['POST', '/jails/{jail}/start', 'admin'],
  jailStop: ['POST', '/jails/{jail}/stop', 'admin'],
  jailReload: ['POST', '/jails/{jail}/reload', 'admin'],
  jailIdle: ['PUT', '/jails/{jail}/idle', 'admin'],
  jailUnbanAll: ['DELETE', '/jails/{jail}/bans', 'admin'],
  jailSettings: ['PATCH', '/jails/{jail}', 'admin'],
  ignoreAdd: ['POST', '/jails/{jail}/ignoreip', 'operator'],
  ignoreRemove: ['DELETE', '/jails/{jail}/ignoreip/{entry}', 'operator'],
  serverSettings: ['GET', '/server/settings', 'admin'],
  changeServerSettings: ['PATCH', '/server/settings', 'admin'],
  serverReload: ['POST', '/server/reload', 'admin'],
  configJails: ['GET', '/config/jails', 'admin'],
  activate: ['POST', '/config/jails/{jail}/activate', 'admin'],
  deactivate: ['POST', '/config/jails/{jail}/deactivate', 'admin'],
  configFiles: ['GET', '/config/files', 'admin'],
  configFile: ['GET', '/config/files/{path}', 'admin'],
  saveConfigFile: ['PUT', '/config/files/{path}', 'admin'],
  deleteConfigFile: ['DELETE', '/config/files/{path}', 'admin'],
  changes: ['GET', '/config/changes', 'admin'],
  revert: ['POST', '/config/changes/{id}/revert', 'admin'],
  filterTest: ['POST', '/filters/test', 'operator'],
  logs: ['GET', '/logs', 'viewer'],
  logStream: ['GET', '/logs/stream', 'viewer'],
  // issue 9: audit log
  audit: ['GET', '/audit', 'admin'],
  auditVerify: ['GET', '/audit/verify', 'admin'],
  // issue 14: fleet mode
  fleetHosts: ['GET', '/fleet/hosts', 'viewer'],
  fleetBan: ['POST', '/fleet/bans', 'operator'],
  fleetUnban: ['POST', '/fleet/unbans', 'operator'],
  fleetBanState: ['GET', '/fleet/bans/{id}', 'viewer'],
  // issue 23: live events, repeat offenders, preferences, restart, blocklist preview
  events: ['GET', '/events', 'viewer'],
  offenders: ['GET', '/history/repeat-offenders', 'viewer'],
  preferences: ['GET', '/preferences', 'viewer'],
  savePreferences: ['PATCH', '/preferences', 'viewer'],
  serverRestart: ['POST', '/server/restart', 'admin'],
  blocklistPreview: ['POST', '/blocklists/preview', 'admin'],
  // issue 24: the advisor and the guided jail form
  advisor: ['GET', '/advisor', 'viewer'],
  advisorFix: ['POST', '/advisor/fixes/{finding_id}', 'admin'],
  configJail: ['GET', '/config/jails/{jail}', 'admin'],
  setJailOptions: ['PATCH', '/config/jails/{jail}', 'admin'],
};
export const ROLES = ['viewer', 'operator', 'admin'];
const ROW_LIMIT = 1000;

// The session and the view on screen; app.js owns them, views read them.
// fleet: is fleet mode on (issue 14)? null until /health has said (see fleetMode()).
export const state = { me: null, current: {}, fleet: null, prefs: {}, route: () => {}, sessionEnded: () => {} };

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
// Does this server have the route? Assumed until it answers 404 without an error code of ours (the router's own
// "no such route"), then its section is hidden for the rest of the page's life.
const absent = new Set();
export const has = (key) => !absent.has(key);
// May the user call it? (the route exists and the user's role is at least the one it requires)
export const may = (key) => has(key) && can(EP[key][2] === 'public' ? 'viewer' : EP[key][2]);

// Fleet mode is on when /health has a `fleet` part (null without BANGUI_FLEET_URL). The Hosts link shows only then.
export function noteHealth(v) {
  state.fleet = !!(v && v.fleet);
  if (state.noteFleet) state.noteFleet(v && v.fleet); // fleet.js: the "fleet degraded" line (issue 21)
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

// ---------- formatting (per the user's preferences, issue 23 item 6) ----------
// One formatter each (creating an Intl formatter per cell cost ~1 ms: 1,000 history rows took 1.3 s), rebuilt
// when the preferences change: time zone (the browser's when unset), ISO or the browser's locale, relative times.
let DATE, DAY, HOUR, PARTS;
const NUM = new Intl.NumberFormat();
let REGIONS = null;
try { REGIONS = new Intl.DisplayNames(undefined, { type: 'region' }); } catch (_) { REGIONS = null; }
export function setPrefs(p) {
  state.prefs = p || {};
  let timeZone = state.prefs.time_zone || undefined;
  try { new Intl.DateTimeFormat(undefined, { timeZone }); } catch (_) { timeZone = undefined; }
  const make = (o) => new Intl.DateTimeFormat(undefined, { timeZone, ...o });
  DATE = make({ year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
  DAY = make({ year: 'numeric', month: 'short', day: 'numeric' });
  HOUR = make({ month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' });
  PARTS = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
  const theme = state.prefs.theme;
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
setPrefs({});
// "2026-12-05 21:08:16 UTC" in the chosen zone (date_format "iso")
function isoText(d, style) {
  const p = {};
  for (const x of PARTS.formatToParts(d)) p[x.type] = x.value;
  const day = p.year + '-' + p.month + '-' + p.day;
  if (style === 'day') return day;
  return day + ' ' + p.hour + ':' + p.minute + (style === 'hour' ? '' : ':' + p.second) + ' ' + p.timeZoneName;
}

export function toDate(v) {
  if (v == null || v === '') return null;
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  return isNaN(d) ? null : d;
}
export const fmtDate = (d, style = 'full') => (state.prefs.date_format === 'iso' ? isoText(d, style)
  : (style === 'day' ? DAY : style === 'hour' ? HOUR : DATE).format(d));
function relText(d) {
  const s = Math.round((d - Date.now()) / 1000);
  const txt = dur(Math.abs(s));
  return s >= 0 ? 'in ' + txt : txt + ' ago';
}
// A time as the user prefers it (absolute or relative); the other form is its tooltip.
export function time(v, empty = '—', style = 'full') {
  const d = toDate(v);
  if (!d) return v == null || v === '' ? empty : String(v);
  const el = document.createElement('time');
  el.dateTime = d.toISOString();
  const abs = fmtDate(d, style), relative = relText(d);
  el.textContent = state.prefs.relative_times ? relative : abs;
  el.title = state.prefs.relative_times ? abs : relative;
  return el;
}
export function rel(v) {
  const d = toDate(v);
  if (!d) return '—';
  return h('time', { datetime: d.toISOString(), title: fmtDate(d) }, relText(d));
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
export const expires = (v, style = 'full') => (v == null ? h('span', { class: 'badge warn' }, 'permanent') : time(v, '—', style));
// "DE" -> "Germany" (the browser's own list of region names; the code stays as a tooltip)
export function countryName(cc) {
  if (!cc) return null;
  try { return (REGIONS && REGIONS.of(String(cc).toUpperCase())) || cc; } catch (_) { return cc; }
}
export const country = (cc) => (cc ? h('span', { title: cc }, countryName(cc)) : '—');

// ---------- messages: beside the control that caused them (issue 23 item 1) ----------
// The control (form or button) the user acted with last. A message goes right after it (or into its table cell)
// and is read out by the page's live regions; when the view is redrawn meanwhile, the message waits for the
// redraw and then goes beside the control's successor (same id, label or text). Without a control on screen
// (a session that ended, a refresh that failed) messages go to the banners at the top.
let acting = null;
let queued = null; // a message held while the view redraws (see redrawn())
let restoring = false;
const sameText = (el) => (el.getAttribute('aria-label') || '') + '|' + el.textContent.trim();
export function describe(el) {
  if (!el || el === document.body || !$('main').contains(el)) return null;
  const kind = el.tagName;
  const same = [...$('main').querySelectorAll(kind)].filter((x) => sameText(x) === sameText(el));
  const plain = [...$('main').querySelectorAll(kind)].filter((x) => x.textContent.trim() === el.textContent.trim());
  return { kind, id: el.id && !/^f\d+$/.test(el.id) ? el.id : null, key: sameText(el), text: el.textContent.trim(),
    index: same.indexOf(el), plainIndex: plain.indexOf(el) };
}
export function findDescribed(d) {
  if (!d) return null;
  if (d.id) { const el = document.getElementById(d.id); if (el) return el; }
  const all = [...$('main').querySelectorAll(d.kind)];
  const same = all.filter((x) => sameText(x) === d.key);
  if (same.length) return same[Math.min(Math.max(d.index, 0), same.length - 1)];
  // the row is gone (an unban): the control of the same kind that took its place
  const plain = all.filter((x) => x.textContent.trim() === d.text);
  return plain.length ? plain[Math.min(Math.max(d.plainIndex, 0), plain.length - 1)] : null;
}
// el: where messages go; focusEl: what has the keyboard focus (the form's submit button) for a redraw to give back
export function actingOn(el, focusEl = null) {
  for (const old of document.querySelectorAll('.feedback')) old.remove();
  acting = el ? { el, desc: describe(el), focus: describe(focusEl || el) } : null;
}
export const actingDesc = () => acting && acting.focus;
function speak(text, bad) {
  const region = $(bad ? 'live-alert' : 'live');
  region.textContent = '';
  // a fresh text node in the next frame: screen readers announce a change, not a region that appeared with text
  requestAnimationFrame(() => { region.textContent = text; });
}
// Place a message beside the acting control; false when there is none on screen.
function beside(text, bad, extra = []) {
  if (!acting) return false;
  if (restoring) { queued = [text, bad, extra]; return true; }
  let el = acting.el.isConnected ? acting.el : findDescribed(acting.desc);
  if (!el || !$('main').contains(el)) return false;
  // a control the redraw hid (a form inside a <details> drawn closed): the message goes to the top instead
  if (!(el.checkVisibility ? el.checkVisibility() : el.offsetParent)) return false;
  acting.el = el;
  const fb = h('div', { class: 'feedback ' + (bad ? 'bad' : 'ok') }, text, ...extra);
  const cell = el.closest('td');
  if (cell) cell.append(fb);
  else (el.tagName === 'BUTTON' && el.parentElement.classList.contains('row') ? el.parentElement : el).after(fb);
  speak(text, bad);
  return true;
}
// The view is being redrawn (true) or has been (false): a message meanwhile waits, then goes beside the control.
export function redrawing(on) {
  restoring = on;
  if (!on && queued) { const q = queued; queued = null; if (!beside(...q)) top(...q); }
}
function top(text, bad, extra = []) {
  if (bad) {
    $('banner-text').replaceChildren(text, ...extra);
    $('banner').hidden = false;
  } else {
    const n = $('notice');
    n.textContent = text;
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.hidden = true; }, 8000);
  }
}
// What went wrong, in words: the entries refused and why (the API's details), named one by one.
export function errorText(e) {
  let text = (e && e.message) || String(e);
  const d = (e && e.details) || {};
  const bad = d.invalid;
  if (Array.isArray(bad) && bad.length) text = 'Nothing was done: not an IP address or network: ' + bad.join(', ') + '.';
  const refused = d.refused;
  if (Array.isArray(refused) && refused.length) {
    text = 'Nothing was done: refused ' + refused.map((r) => (typeof r === 'string' ? r
      : (r.entry || r.ip || r.address || '') + (r.reason ? ' (' + r.reason + ')' : ''))).join(', ') + '. ' + text;
  }
  // a configuration change that fail2ban could not run: bangui restored the previous files (issue 10)
  if (e && e.code === 'apply_failed') text = 'The change failed and was rolled back; fail2ban runs the previous configuration.\n' + text;
  if (e && e.code === 'config_invalid') text = 'fail2ban refused the change; nothing was changed.\n' + text;
  return text;
}
// `from`: who showed it ('refresh': a view's periodic refresh, whose next success takes the message away)
export function showError(e, from = '') {
  if (e && e.status === 401 && e.handled) return;
  $('banner').dataset.from = from;
  const text = errorText(e);
  const tail = e && e.details && e.details.log_tail;
  const log = tail && tail.length ? h('details', { class: 'tail' }, h('summary', {}, "The end of fail2ban's log"),
    h('pre', {}, [].concat(tail).join('\n'))) : null;
  const extra = log ? [log] : [];
  if (from === 'refresh' || !beside(text, true, extra)) { top(text, true, extra); speak(text, true); }
}
export function hideBanner() { $('banner').hidden = true; }
let noticeTimer = null;
export function notice(text) {
  if (!beside(text, false)) { top(text, false); speak(text, false); }
}

// ---------- API ----------
export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    Object.assign(this, { status, code, details: details || {}, retryAfter });
  }
}

// calls whose 401 means "not logged in (yet)", not "your session ended"
const QUIET_401 = new Set(['login', 'setup', 'setupState', 'session']);
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
    if (r.status === 404 && !EP[key][1].includes('{')) absent.add(key); // the route itself is missing
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
    const focused = document.activeElement;
    actingOn(form, ev.submitter || focused);
    btns.forEach((b) => { b.disabled = true; });
    hideBanner();
    try { await fn(ev.submitter); } catch (e) { showError(e); } finally {
      btns.forEach((b) => { if (!b.dataset.locked) b.disabled = false; });
      refocus(focused);
    }
  });
  return form;
}
// Disabling a focused button moves the focus to the body: give it back when the element is still there.
function refocus(el) {
  const now = document.activeElement;
  if (el && el.isConnected && (!now || now === document.body)) el.focus({ preventScroll: true });
}
// A button that runs fn (disabled meanwhile).
export function action(label, fn, cls = 'small', ariaLabel = null) {
  // the accessible name starts with the visible text (WCAG 2.5.3 "label in name"); the rest says which one
  const b = h('button', { type: 'button', class: cls, 'aria-label': ariaLabel && !ariaLabel.startsWith(label) ? label + ' ' + ariaLabel : ariaLabel }, label);
  b.addEventListener('click', async () => {
    actingOn(b);
    b.disabled = true;
    hideBanner();
    try { await fn(b); } catch (e) { showError(e); } finally { b.disabled = false; refocus(b); }
  });
  return b;
}
// Unban ip in one jail, or in every jail (jail null); then() after success (views re-read their data:
// counters and lists change with an unban).
export const unbanBtn = (ip, jail, then, label = 'Unban') => action(label, async (b) => {
  const r = await (jail ? api('unban', { params: { jail, ip } }) : api('unbanAll', { params: { ip } }));
  await then(b); // then the message: beside the control's successor when the view redrew
  notice('Unbanned ' + ip + (jail ? ' in ' + jail : ' from ' + r.unbanned_from.join(', ')) + '.');
}, 'danger small', jail ? 'Unban ' + ip + ' in ' + jail : label + ': unban ' + ip + ' in every jail');

// ---------- tables ----------
// columns: [label, row => cell, className?, row => sort key?]; a column with a sort key gets a header
// button that sorts by it. At most ROW_LIMIT rows are drawn unless asked for all. Rows are built into a
// fragment and attached once (one layout for the whole table). `sort` ({by, desc}, kept by the caller) keeps the
// user's order across the redraws of a refreshing view. With `sort.server` (a function (column, desc)) the rows
// come in the server's order and a header click asks the server for another (`sort.server`, then the caller
// redraws): the sort key of a column is then the name of the server's order (pages of current bans, where a page
// sorted alone would mislead).
export function table(rows, columns, empty = 'Nothing here.', first = ROW_LIMIT, sort = null) {
  const wrap = h('div', { class: 'tablewrap' });
  let sortBy = sort ? sort.by : -1, desc = sort ? sort.desc : false, limit = first;
  const server = sort && sort.server;
  const pick = (i) => {
    const d = sortBy === i ? !desc : false;
    if (server) { server(i, d); return; }
    desc = d; sortBy = i; draw();
  };
  const draw = () => {
    if (sort) Object.assign(sort, { by: sortBy, desc });
    if (!rows.length) { wrap.replaceChildren(muted(empty)); return; }
    let list = rows;
    if (sortBy >= 0 && !server) {
      const key = columns[sortBy][3];
      list = rows.map((r) => [key(r), r]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((x) => x[1]);
      if (desc) list.reverse();
    }
    const shown = list.length > limit ? list.slice(0, limit) : list;
    const head = h('tr', {}, columns.map(([label0, , cls, key], i) => { const label = label0 || h('span', { class: 'sr-only' }, 'Actions'); return h('th', {
      scope: 'col', class: cls, 'aria-sort': i === sortBy ? (desc ? 'descending' : 'ascending') : null,
    }, key ? h('button', { type: 'button', class: 'sort', 'data-col': i, onclick: () => pick(i) },
      label, i === sortBy ? (desc ? ' ▼' : ' ▲') : '') : label); }));
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
// A view for admins, opened by someone else (a link, a typed address): say so once instead of failing its calls
// with 403s (issue 23 item 8). True when the view should stop here.
export function adminsOnly(main, what) {
  if (can('admin')) return false;
  main.append(h('p', { class: 'notice-box', role: 'note' }, 'Admins only: ' + what + ' Your role is ' + state.me.role + '.'));
  return true;
}
