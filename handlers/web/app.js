// bangui web page: talks only to the JSON API under /api/v1 with the session cookie.
// Server data is rendered as text (textContent / text nodes), never parsed as HTML.
'use strict';

const API = '/api/v1';
// Every API call the page makes: [method, path]. tests/handlers/test_web.py checks them against the
// OpenAPI document, so add new calls here, not as ad-hoc fetches.
const EP = {
  setupState: ['GET', '/setup'],
  setup: ['POST', '/setup'],
  login: ['POST', '/auth/login'],
  logout: ['POST', '/auth/logout'],
  session: ['GET', '/auth/session'],
  logoutAll: ['DELETE', '/auth/sessions'],
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
  tokens: ['GET', '/tokens'],
  newToken: ['POST', '/tokens'],
  revokeToken: ['DELETE', '/tokens/{id}'],
  users: ['GET', '/users'],
  newUser: ['POST', '/users'],
  changeUser: ['PATCH', '/users/{name}'],
  deleteUser: ['DELETE', '/users/{name}'],
};
const ROLES = ['viewer', 'operator', 'admin'];
const ROW_LIMIT = 500;

let me = null; // {username, role, expires_at} while logged in
let current = {}; // the view on screen: {refresh, busy}

// ---------- DOM helpers (text only) ----------
const $ = (id) => document.getElementById(id);

function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
const hash = (...segs) => '#/' + segs.map(encodeURIComponent).join('/');
const link = (text, ...segs) => h('a', { href: hash(...segs) }, text);
const ipLink = (ip) => h('a', { href: hash('ips', ip), class: 'mono' }, ip);
const jailLink = (jail) => link(jail, 'jails', jail);
const can = (role) => !!me && ROLES.indexOf(me.role) >= ROLES.indexOf(role);
const alive = (ctx) => ctx === current;

function field(label, input, hint) {
  const id = input.id || (input.id = 'f' + Math.random().toString(36).slice(2, 9));
  return h('div', { class: 'field' }, h('label', { for: id }, label), input,
    hint ? h('div', { class: 'muted small' }, hint) : null);
}

// ---------- formatting ----------
function toDate(v) {
  if (v == null || v === '') return null;
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  return isNaN(d) ? null : d;
}
function time(v, empty = '—') {
  const d = toDate(v);
  if (!d) return v == null || v === '' ? empty : String(v);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() },
    d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }));
}
function rel(v) {
  const d = toDate(v);
  if (!d) return '—';
  const s = Math.round((d - Date.now()) / 1000);
  const txt = dur(Math.abs(s));
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, s >= 0 ? 'in ' + txt : txt + ' ago');
}
function dur(sec) {
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
const num = (n) => (typeof n === 'number' ? n.toLocaleString() : n == null ? '—' : String(n));
const expires = (v) => (v == null ? h('span', { class: 'badge warn' }, 'permanent') : time(v));

// ---------- messages ----------
function showError(e) {
  if (e && e.status === 401 && e.handled) return;
  let text = (e && e.message) || String(e);
  const bad = e && e.details && e.details.invalid;
  if (Array.isArray(bad) && bad.length) text = 'Nothing was done: not an IP address or network:\n' + bad.join('\n');
  $('banner-text').textContent = text;
  $('banner').hidden = false;
}
function hideBanner() { $('banner').hidden = true; }
let noticeTimer = null;
function notice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 8000);
}

// ---------- API ----------
class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    Object.assign(this, { status, code, details: details || {}, retryAfter });
  }
}

function apiPath(key, params = {}, query = null) {
  const path = EP[key][1].replace(/\{(\w+)\}/g, (_, name) => {
    const v = String(params[name]);
    // CIDR networks keep their '/' (the server routes {ip:path}); everything else is encoded
    return name === 'ip' ? v.split('/').map(encodeURIComponent).join('/') : encodeURIComponent(v);
  });
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '' && v != null)) : null;
  return API + path + (qs && String(qs) ? '?' + qs : '');
}

async function api(key, { params, query, body } = {}) {
  const opts = { method: EP[key][0], credentials: 'same-origin', headers: { Accept: 'application/json' } };
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
  if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
  if (!r.ok) {
    const err = (data && data.error) || {};
    const e = new ApiError(r.status, err.code || 'http_' + r.status,
      err.message || 'request failed: HTTP ' + r.status, err.details, r.headers.get('Retry-After'));
    if (r.status === 401 && key !== 'login' && key !== 'setup' && key !== 'setupState') {
      e.handled = true;
      sessionEnded();
    }
    throw e;
  }
  return data;
}

// ---------- session, chrome, routing ----------
function sessionEnded(msg) {
  const wasIn = !!me;
  me = null;
  renderLogin();
  if (wasIn) notice(msg || 'Your session has ended: please log in again.');
}

function setChrome() {
  const nav = $('nav'), who = $('who');
  nav.hidden = who.hidden = !me;
  nav.replaceChildren();
  who.replaceChildren();
  if (!me) return;
  const items = [['Dashboard', ''], ['Bans', 'bans'], ['IP lookup', 'ips'], ['History', 'history'],
    ['Jobs', 'jobs'], ['Blocklists', 'blocklists'], ['Tokens', 'tokens']];
  if (can('admin')) items.push(['Users', 'users']);
  for (const [label, name] of items) nav.append(h('a', { href: name ? hash(name) : '#/', 'data-view': name || 'dashboard' }, label));
  who.append(h('span', {}, me.username + ' (' + me.role + ')'),
    h('button', { type: 'button', class: 'secondary small', onclick: logout }, 'Log out'),
    h('button', { type: 'button', class: 'secondary small', onclick: logoutEverywhere }, 'Log out everywhere'));
}

async function logout() {
  try { await api('logout'); } catch (e) { if (!e.handled) showError(e); }
  me = null;
  renderLogin();
  notice('Logged out.');
}
async function logoutEverywhere() {
  if (!confirm('End all your sessions, on every device (this one too)?')) return;
  try {
    const r = await api('logoutAll');
    me = null;
    renderLogin();
    notice('Logged out everywhere' + (r && r.ended != null ? ' (' + r.ended + ' sessions ended).' : '.'));
  } catch (e) { showError(e); }
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  return raw ? raw.split('/').map((s) => { try { return decodeURIComponent(s); } catch (_) { return s; } }) : [];
}

function route() {
  if (!me) return;
  const segs = parseHash();
  const name = segs[0] || 'dashboard';
  const view = VIEWS[name];
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const ctx = current = { refresh: null, busy: false };
  const main = $('main');
  main.replaceChildren();
  if (!view) {
    main.append(h('h1', {}, 'Not found'), h('p', {}, link('Back to the dashboard', '')));
    return;
  }
  document.title = 'bangui · ' + (name === 'dashboard' ? 'dashboard' : segs.join(' / '));
  Promise.resolve(view(main, segs.slice(1), ctx)).catch(showError);
}

async function refreshNow() {
  const ctx = current;
  if (!ctx.refresh || ctx.busy) return;
  ctx.busy = true;
  try { await ctx.refresh(); } catch (e) { showError(e); } finally { ctx.busy = false; }
}
setInterval(() => { if (document.visibilityState === 'visible') refreshNow(); }, 5000);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refreshNow(); });
window.addEventListener('hashchange', () => { hideBanner(); $('notice').hidden = true; route(); $('main').focus({ preventScroll: true }); });

// A submit handler that disables the form's button while it runs and shows errors in the banner.
function onSubmit(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btns = form.querySelectorAll('button');
    btns.forEach((b) => { b.disabled = true; });
    hideBanner();
    try { await fn(); } catch (e) { showError(e); } finally { btns.forEach((b) => { if (!b.dataset.locked) b.disabled = false; }); }
  });
  return form;
}
// A button that runs fn (disabled meanwhile).
function action(label, fn, cls = 'small', ariaLabel = null) {
  const b = h('button', { type: 'button', class: cls, 'aria-label': ariaLabel });
  b.textContent = label;
  b.addEventListener('click', async () => {
    b.disabled = true;
    hideBanner();
    try { await fn(b); } catch (e) { showError(e); } finally { b.disabled = false; }
  });
  return b;
}

// Unban ip in one jail, or in every jail (jail null); then(button) after success.
const unbanBtn = (ip, jail, then, label = 'Unban') => action(label, async (b) => {
  const r = await (jail ? api('unban', { params: { jail, ip } }) : api('unbanAll', { params: { ip } }));
  notice('Unbanned ' + ip + (jail ? ' in ' + jail : ' from ' + r.unbanned_from.join(', ')) + '.');
  then(b);
}, 'danger small', label + ' ' + ip + (jail ? ' in ' + jail : ' in every jail'));
const dropRow = (b) => b.closest('tr').remove();

// ---------- tables ----------
// columns: [label, row => cell, className?]; renders at most ROW_LIMIT rows unless asked for all.
function table(rows, columns, empty = 'Nothing here.') {
  const wrap = h('div', { class: 'tablewrap' });
  const draw = (limit) => {
    if (!rows.length) { wrap.replaceChildren(muted(empty)); return; }
    const shown = rows.slice(0, limit);
    const t = h('table', {},
      h('thead', {}, h('tr', {}, columns.map(([label, , cls]) => h('th', { scope: 'col', class: cls }, label)))),
      h('tbody', {}, shown.map((r) => h('tr', {}, columns.map(([, cell, cls]) => h('td', { class: cls }, cell(r)))))));
    wrap.replaceChildren(t);
    if (rows.length > shown.length) {
      wrap.append(h('p', {}, 'Showing ' + shown.length + ' of ' + rows.length + '. ',
        h('button', { type: 'button', class: 'secondary small', onclick: () => draw(Infinity) }, 'Show all')));
    }
  };
  draw(ROW_LIMIT);
  return wrap;
}

// A table with a text filter above it (matches any of the given fields).
function filtered(rows, columns, keys, empty) {
  const out = h('div');
  const input = h('input', { type: 'search', placeholder: 'filter', 'aria-label': 'Filter rows' });
  const draw = () => {
    const q = input.value.trim().toLowerCase();
    const sel = q ? rows.filter((r) => keys.some((k) => String(r[k] ?? '').toLowerCase().includes(q))) : rows;
    out.replaceChildren(table(sel, columns, q ? 'No match.' : empty));
  };
  input.addEventListener('input', draw);
  draw();
  return h('div', {}, rows.length > 10 ? h('p', {}, input) : null, out);
}

// Any JSON value as text nodes: times, IPs and jails get links/formatting, the rest is plain text.
function generic(key, v) {
  if (v == null) return '—';
  if (key === 'ip' && typeof v === 'string') return ipLink(v);
  if (key === 'jail' && typeof v === 'string') return jailLink(v);
  if (key === 'matches' && Array.isArray(v)) return matches(v);
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v)) return time(v);
  if (typeof v === 'number' && /(time|_s)$/.test(key)) return dur(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)) return v.join(', ');
  if (typeof v === 'object') return h('code', {}, JSON.stringify(v));
  if (typeof v === 'number') return num(v);
  return String(v);
}
function genericTable(items) {
  const keys = [];
  for (const it of items.slice(0, 200)) for (const k of Object.keys(it || {})) if (!keys.includes(k)) keys.push(k);
  return table(items, keys.map((k) => [k, (r) => generic(k, r && r[k])]));
}
// kv(label, value, label, value...) -> a definition list
function kv(...pairs) {
  const dl = h('dl', { class: 'kv' });
  for (let i = 0; i < pairs.length; i += 2) dl.append(h('dt', {}, pairs[i]), h('dd', {}, pairs[i + 1]));
  return dl;
}
const genericKV = (obj) => kv(...Object.entries(obj).flatMap(([k, v]) => [k, generic(k, v)]));
function matches(lines) {
  if (!lines || !lines.length) return '—';
  return h('details', {}, h('summary', {}, lines.length + (lines.length === 1 ? ' line' : ' lines')),
    h('pre', {}, lines.map(String).join('\n')));
}
const statusBadge = (s) => h('span', {
  class: 'badge ' + ({ ok: 'ok', running: 'warn', degraded: 'bad', error: 'bad', timeout: 'bad', ban: 'bad', unban: 'ok' }[s] || ''),
}, s == null ? 'never' : s);

function card(n, label) { return h('div', { class: 'card' }, h('div', { class: 'n' }, num(n)), h('div', { class: 'l' }, label)); }
const box = (title, ...kids) => h('section', { class: 'box', 'aria-label': title }, h('h2', {}, title), ...kids);
const muted = (text) => h('p', { class: 'muted' }, text);
const failed = (e) => h('p', { class: 'bad' }, 'Unavailable: ' + ((e && e.message) || e));

// ---------- first run and login ----------
function renderSetup() {
  me = null;
  setChrome();
  const token = h('input', { required: true, autocomplete: 'off', spellcheck: 'false' });
  const user = h('input', { required: true, autocomplete: 'username', value: 'admin' });
  const pass = h('input', { type: 'password', required: true, minlength: 12, autocomplete: 'new-password' });
  const pass2 = h('input', { type: 'password', required: true, minlength: 12, autocomplete: 'new-password' });
  const form = h('form', { class: 'stack' }, field('Setup token', token), field('Admin username', user),
    field('Password', pass, 'At least 12 characters.'), field('Password again', pass2),
    h('div', {}, h('button', { type: 'submit' }, 'Create admin')));
  onSubmit(form, async () => {
    if (pass.value !== pass2.value) throw new Error('The two passwords differ.');
    await api('setup', { body: { setup_token: token.value.trim(), username: user.value, password: pass.value } });
    me = await api('login', { body: { username: user.value, password: pass.value } });
    setChrome();
    route();
    notice('Admin ' + me.username + ' created; you are logged in.');
  });
  $('main').replaceChildren(h('div', { class: 'login' }, h('h1', {}, 'Welcome to bangui'),
    h('p', {}, 'No user exists yet. Create the first admin with the one-time setup token that bangui wrote to ',
      h('code', {}, '<data dir>/setup-token'), ' (by default ', h('code', {}, '/var/lib/bangui/setup-token'),
      '; readable only by the service user).'), form));
  token.focus();
}

function renderLogin() {
  current = {};
  setChrome();
  const user = h('input', { required: true, autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { type: 'password', required: true, autocomplete: 'current-password' });
  const btn = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { class: 'stack' }, field('Username', user), field('Password', pass), h('div', {}, btn));
  onSubmit(form, async () => {
    try {
      me = await api('login', { body: { username: user.value, password: pass.value } });
    } catch (e) {
      if (e.status === 429) lockFor(btn, Number(e.retryAfter) || 30);
      pass.value = '';
      throw e;
    }
    setChrome();
    route();
  });
  $('main').replaceChildren(h('div', { class: 'login' }, h('h1', {}, 'Log in to bangui'), form));
  user.focus();
}
function lockFor(btn, seconds) {
  btn.dataset.locked = '1';
  const tick = () => {
    if (seconds <= 0) { delete btn.dataset.locked; btn.disabled = false; btn.textContent = 'Log in'; return; }
    btn.disabled = true;
    btn.textContent = 'Log in (wait ' + seconds-- + ' s)';
    setTimeout(tick, 1000);
  };
  tick();
}

// ---------- views ----------
const VIEWS = {};

VIEWS.dashboard = async (main, _args, ctx) => {
  const cards = h('div', { class: 'cards' }), health = h('div'), jails = h('div'), stamp = h('p', { class: 'muted small' });
  main.append(h('h1', {}, 'Dashboard'), box('fail2ban', cards), box('Health', health), box('Jails', jails), stamp);
  const last = ['', '', ''];
  // Redraw a section only when its data changed: keeps the DOM (and keyboard focus) otherwise.
  const changed = (i, x) => {
    const key = JSON.stringify(x.status === 'fulfilled' ? x.value : x.reason && x.reason.message);
    if (key === last[i]) return false;
    last[i] = key;
    return true;
  };
  ctx.refresh = async () => {
    const [s, hl, j] = await Promise.allSettled([api('server'), api('health'), api('jails')]);
    if (!alive(ctx)) return;
    stamp.textContent = 'Updated ' + new Date().toLocaleTimeString() + '; refreshes every 5 s while this tab is visible.';
    if (!changed(0, s)) { /* same */ } else if (s.value) {
      const v = s.value;
      cards.replaceChildren(card(v.jail_count, 'jails'), card(v.currently_banned, 'banned now'),
        card(v.total_banned, 'banned in total'), card(v.currently_failed, 'failing now'),
        card(v.total_failed, 'failures in total'),
        h('div', { class: 'card' }, h('div', { class: 'n' }, v.version || '?'), h('div', { class: 'l' }, 'fail2ban version')));
    } else cards.replaceChildren(failed(s.reason));
    if (!changed(1, hl)) { /* same */ } else if (hl.value) health.replaceChildren(renderHealth(hl.value));
    else health.replaceChildren(failed(hl.reason));
    if (!changed(2, j)) { /* same */ } else if (j.value) {
      jails.replaceChildren(table(j.value.jails, [
        ['Jail', (r) => jailLink(r.name)],
        ['Banned now', (r) => num(r.currently_banned), 'num'],
        ['Banned total', (r) => num(r.total_banned), 'num hide-sm'],
        ['Failing now', (r) => num(r.currently_failed), 'num'],
        ['Failures total', (r) => num(r.total_failed), 'num hide-sm'],
      ], 'fail2ban has no jails.'));
    } else jails.replaceChildren(failed(j.reason));
  };
  await refreshNow();
};

function renderHealth(v) {
  const f = v.fail2ban || {};
  const leader = v.leader;
  return kv('Status', statusBadge(v.status),
    'fail2ban', (f.reachable
      ? h('span', { class: 'ok' }, 'reachable' + (f.version ? ', version ' + f.version : ''))
      : h('span', { class: 'bad' }, 'unreachable' + (f.error ? ': ' + f.error : ''))),
    'Socket', h('code', {}, f.socket || '—'),
    'Store', v.store ? h('span', { class: 'ok' }, 'usable') : h('span', { class: 'bad' }, 'failing'),
    'Served by', 'worker pid ' + v.worker_pid,
    'Job leader', (leader
      ? 'pid ' + leader.pid + (leader.pid === v.worker_pid ? ' (this worker)' : '') + ', epoch ' + leader.epoch +
        ', heartbeat ' + dur(leader.heartbeat_age_s) + ' ago'
      : h('span', { class: 'warn' }, 'none elected')));
}

VIEWS.jails = async (main, args, ctx) => {
  const name = args[0];
  if (!name) { location.hash = '#/'; return; }
  const j = await api('jail', { params: { jail: name } });
  if (!alive(ctx)) return;
  main.append(h('p', {}, link('← Dashboard', '')), h('h1', {}, 'Jail ', h('span', { class: 'mono' }, j.name)),
    h('div', { class: 'cards' }, card(j.currently_banned, 'banned now'), card(j.total_banned, 'banned in total'),
      card(j.currently_failed, 'failing now'), card(j.total_failed, 'failures in total')));
  const list = (xs) => (xs && xs.length ? h('ul', {}, xs.map((x) => h('li', { class: 'mono' }, x))) : '—');
  main.append(box('Settings', kv('Ban time', dur(j.bantime), 'Find time', dur(j.findtime),
    'Max retry', num(j.maxretry), 'Ignored', list(j.ignoreip), 'Log paths', list(j.logpaths), 'Actions', list(j.actions))));
  if (can('operator')) {
    const ta = h('textarea', { id: 'ban-ips', rows: 4, spellcheck: 'false', placeholder: '203.0.113.7\n198.51.100.0/24' });
    const form = h('form', {}, h('label', { for: 'ban-ips' }, 'Addresses or networks to ban, one per line'), ta,
      h('p', {}, h('button', { type: 'submit' }, 'Ban in ' + j.name)));
    onSubmit(form, async () => {
      const ips = ta.value.split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);
      if (!ips.length) throw new Error('Enter at least one address or network.');
      const r = await api('ban', { params: { jail: j.name }, body: { ips } });
      route();
      notice('Banned ' + r.banned.length + (r.banned.length ? ': ' + r.banned.join(', ') : '') +
        (r.already_banned.length ? '. Already banned: ' + r.already_banned.join(', ') : '') + '.');
    });
    main.append(box('Ban', form));
  }
  const cols = [['Address', (r) => ipLink(r.ip)], ['Banned', (r) => time(r.banned_at)], ['Expires', (r) => expires(r.expires_at)]];
  if (can('operator')) {
    cols.push(['', (r) => unbanBtn(r.ip, j.name, dropRow)]);
  }
  main.append(box('Banned now (' + j.banned.length + ')', filtered(j.banned, cols, ['ip'], 'No address is banned in this jail.')));
};

VIEWS.bans = async (main, _args, ctx) => {
  const r = await api('bans');
  if (!alive(ctx)) return;
  const cols = [['Address', (b) => ipLink(b.ip)], ['Jail', (b) => jailLink(b.jail)],
    ['Banned', (b) => time(b.banned_at), 'hide-sm'], ['Expires', (b) => expires(b.expires_at)]];
  if (can('operator')) {
    cols.push(['', (b) => h('div', { class: 'row' },
      unbanBtn(b.ip, b.jail, dropRow), unbanBtn(b.ip, null, route, 'Everywhere'))]);
  }
  main.append(h('h1', {}, 'Current bans (' + r.bans.length + ')'),
    filtered(r.bans, cols, ['ip', 'jail'], 'No address is banned right now.'));
};

VIEWS.ips = async (main, args, ctx) => {
  const input = h('input', { required: true, value: args[0] || '', spellcheck: 'false', autocapitalize: 'none', placeholder: '203.0.113.7' });
  const form = h('form', { class: 'inline', role: 'search' }, field('IP address or network', input),
    h('button', { type: 'submit' }, 'Look up'));
  onSubmit(form, async () => { location.hash = hash('ips', input.value.trim()); });
  main.append(h('h1', {}, 'IP lookup'), form);
  if (!args[0]) { input.focus(); return; }
  const r = await api('ip', { params: { ip: args[0] } });
  if (!alive(ctx)) return;
  const ip = r.ip || args[0];
  const bans = r.current_bans || [];
  main.append(h('h2', { class: 'row ipt' }, h('span', { class: 'mono' }, ip), bans.length
    ? h('span', { class: 'badge bad' }, 'banned now in ' + bans.length + (bans.length === 1 ? ' jail' : ' jails'))
    : h('span', { class: 'badge ok' }, 'not banned now')));
  if (bans.length) {
    const cols = [['Jail', (b) => jailLink(b.jail)], ['Banned', (b) => time(b.banned_at)], ['Expires', (b) => expires(b.expires_at)]];
    if (can('operator')) {
      cols.push(['', (b) => unbanBtn(ip, b.jail, route)]);
    }
    main.append(box('Current bans', table(bans, cols)));
    if (can('operator') && bans.length > 1) {
      main.append(h('p', {}, unbanBtn(ip, null, route, 'Unban everywhere')));
    }
  }
  // Whatever else the server knows (timeline, events, country...), shown generically as text.
  const scalars = {};
  for (const [k, v] of Object.entries(r)) {
    if (['ip', 'banned_now', 'current_bans'].includes(k)) continue;
    if (Array.isArray(v) && v.length && typeof v[0] === 'object') main.append(box(k, genericTable(v)));
    else if (Array.isArray(v) && !v.length) main.append(box(k, muted('Nothing recorded.')));
    else if (v && typeof v === 'object' && !Array.isArray(v)) main.append(box(k, genericKV(v)));
    else scalars[k] = v;
  }
  if (Object.keys(scalars).length) main.append(box('Details', genericKV(scalars)));
};

// --- history and statistics ---
const unavailable = (e) => e && e.status === 404;

VIEWS.history = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'History'));
  const stats = h('div'), results = h('div');
  main.append(box('Statistics', stats));
  const ranges = ['24h', '7d', '30d', '365d'];
  let range = '24h';
  const rangeBtns = h('div', { class: 'row', role: 'group', 'aria-label': 'Range' });
  const statsBody = h('div');
  const loadStats = async () => {
    rangeBtns.replaceChildren(...ranges.map((rg) => h('button', {
      type: 'button', class: rg === range ? 'small' : 'secondary small', 'aria-pressed': String(rg === range),
      onclick: () => { range = rg; loadStats().catch(showError); },
    }, rg)));
    statsBody.replaceChildren(muted('Loading…'));
    let s;
    try { s = await api('stats', { query: { range } }); } catch (e) {
      if (!unavailable(e)) throw e;
      stats.replaceChildren(muted('Statistics not available on this server.'));
      return;
    }
    if (!alive(ctx)) return;
    statsBody.replaceChildren(renderStats(s));
  };
  stats.append(rangeBtns, statsBody);

  // filters
  const f = {
    since: h('input', { type: 'datetime-local', step: 1 }), until: h('input', { type: 'datetime-local', step: 1 }),
    jail: h('input', { size: 12, spellcheck: 'false' }), ip: h('input', { size: 18, spellcheck: 'false' }),
    origin: h('input', { size: 10, spellcheck: 'false', placeholder: 'any' }),
    limit: h('input', { type: 'number', min: 1, max: 1000, value: '100', style: 'width:6em' }),
  };
  const csv = h('a', { class: 'button secondary', download: 'bangui-history.csv' }, 'Download CSV');
  const form = h('form', { class: 'inline', role: 'search' },
    field('Since', f.since), field('Until', f.until), field('Jail', f.jail), field('IP', f.ip),
    field('Origin', f.origin), field('Limit', f.limit), h('button', { type: 'submit' }, 'Apply'), csv);
  const iso = (v) => { const d = v ? new Date(v) : null; return d && !isNaN(d) ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : ''; };
  const filters = () => ({ since: iso(f.since.value), until: iso(f.until.value), jail: f.jail.value.trim(),
    ip: f.ip.value.trim(), origin: f.origin.value.trim() });
  const rows = [];
  const more = h('div');
  const cols = [['When', (r) => time(r.at)], ['Event', (r) => statusBadge(r.event)], ['Address', (r) => ipLink(r.ip)],
    ['Jail', (r) => jailLink(r.jail)], ['Ban time', (r) => (r.event === 'ban' ? dur(r.bantime) : '—'), 'hide-sm'],
    ['Failures', (r) => num(r.failures), 'num hide-sm'], ['Origin', (r) => r.origin || '—'],
    ['By', (r) => r.actor || '—', 'hide-sm'], ['Country', (r) => r.country || '—', 'hide-sm'],
    ['Log lines', (r) => matches(r.matches)]];
  let q0 = {}; // the applied filters: "load more" continues them even if the form was edited since
  const load = async (cursor) => {
    if (!cursor) q0 = { ...filters(), limit: f.limit.value };
    const q = { ...q0, cursor };
    let r;
    try { r = await api('history', { query: q }); } catch (e) {
      if (!unavailable(e)) throw e;
      results.replaceChildren(muted('History not available on this server.'));
      form.hidden = true;
      return;
    }
    if (!alive(ctx)) return;
    if (!cursor) rows.length = 0;
    rows.push(...(r.items || []));
    results.replaceChildren(table(rows, cols, 'No events match.'));
    more.replaceChildren(r.next_cursor ? action('Load more', () => load(r.next_cursor), 'secondary') : '');
  };
  const updateCsv = () => { csv.href = apiPath('history', {}, { ...filters(), format: 'csv' }); };
  form.addEventListener('input', updateCsv);
  updateCsv();
  onSubmit(form, () => load());
  main.append(box('Events', form, results, more));
  await Promise.all([loadStats(), load()]);
};

function renderStats(s) {
  const out = h('div');
  const trend = s.trend || [];
  out.append(h('h3', {}, 'Bans over time'), trend.length ? barChart(trend) : muted('No events in this range.'));
  const parts = [['By jail', s.by_jail], ['Top addresses', s.top_ips], ['Top countries', s.top_countries], ['By origin', s.by_origin]];
  out.append(h('div', { class: 'grid2' }, parts.filter(([, d]) => d != null).map(([t, d]) => h('div', {}, h('h3', {}, t), breakdown(d)))));
  return out;
}

function barChart(trend) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 10, H = 100;
  const counts = trend.map((p) => Number(p.count) || 0);
  const max = Math.max(1, ...counts);
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + trend.length * W + ' ' + H);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'Bans per interval; peak ' + max);
  trend.forEach((p, i) => {
    const hgt = (counts[i] / max) * (H - 2);
    const rect = document.createElementNS(NS, 'rect');
    rect.setAttribute('x', i * W + 1);
    rect.setAttribute('width', W - 2);
    rect.setAttribute('y', H - hgt);
    rect.setAttribute('height', Math.max(hgt, counts[i] ? 1 : 0));
    const title = document.createElementNS(NS, 'title');
    const d = toDate(p.start ?? p.at);
    title.textContent = (d ? d.toLocaleString() : String(p.start ?? p.at ?? '')) + ': ' + counts[i];
    rect.append(title);
    svg.append(rect);
  });
  const when = (p) => { const d = toDate(p.start ?? p.at); return d ? d.toLocaleString() : ''; };
  return h('figure', { style: 'margin:0' }, svg, h('figcaption', { class: 'row spread muted small' },
    h('span', {}, when(trend[0])), h('span', {}, 'peak ' + max + ', total ' + counts.reduce((a, b) => a + b, 0)),
    h('span', {}, when(trend[trend.length - 1]))));
}

// [{jail|ip|country|origin|..., count}] or {label: count} or [[label, count]] -> horizontal bars.
function breakdown(data) {
  let rows = [];
  if (Array.isArray(data)) {
    rows = data.map((x) => {
      if (Array.isArray(x)) return { key: '', label: x[0], count: x[1] };
      if (x && typeof x === 'object') {
        const key = ['jail', 'ip', 'country', 'origin', 'name', 'key', 'label'].find((k) => x[k] != null) ||
          Object.keys(x).find((k) => typeof x[k] === 'string') || '';
        const count = x.count ?? Object.values(x).find((v) => typeof v === 'number');
        return { key, label: key ? x[key] : '?', count };
      }
      return { key: '', label: x, count: null };
    });
  } else if (data && typeof data === 'object') {
    rows = Object.entries(data).map(([label, count]) => ({ key: '', label, count })).sort((a, b) => b.count - a.count);
  }
  if (!rows.length) return muted('None.');
  const max = Math.max(1, ...rows.map((r) => Number(r.count) || 0));
  return h('div', { class: 'hbar' }, rows.map((r) => {
    const label = r.key === 'ip' ? ipLink(String(r.label)) : r.key === 'jail' ? jailLink(String(r.label)) : h('span', {}, String(r.label ?? '?'));
    const bar = h('div', { class: 'bar', 'aria-hidden': 'true' });
    bar.style.width = ((Number(r.count) || 0) / max) * 100 + '%';
    return [label, h('div', {}, bar), h('span', { class: 'num' }, num(r.count))];
  }));
}

VIEWS.jobs = async (main, _args, ctx) => {
  const leaderBox = h('div'), list = h('div');
  main.append(h('h1', {}, 'Jobs'), box('Leader', leaderBox), box('Jobs', list));
  let last = '';
  ctx.refresh = async () => {
    const r = await api('jobs');
    if (!alive(ctx)) return;
    const key = JSON.stringify(r.jobs) + JSON.stringify(r.leader && { ...r.leader, heartbeat_age_s: 0 });
    const l = r.leader;
    leaderBox.replaceChildren(l
      ? kv('Process', 'pid ' + l.pid + ' on ' + l.host, 'Epoch', num(l.epoch), 'Leading since', time(l.since),
        'Heartbeat', dur(l.heartbeat_age_s) + ' ago')
      : h('p', { class: 'warn' }, 'No leader right now: jobs wait until a worker is elected.'));
    if (key === last) return;
    last = key;
    const cols = [['Job', (j) => h('span', { class: 'mono' }, j.name)], ['Every', (j) => dur(j.interval_s)],
      ['Last run', (j) => time(j.last_started, 'never')], ['Status', (j) => statusBadge(j.last_status)],
      ['Runs', (j) => num(j.runs), 'num hide-sm'], ['Next due', (j) => (j.next_due ? rel(j.next_due) : 'as soon as a leader runs it'), 'hide-sm'],
      ['Last error', (j) => (j.last_error ? h('pre', {}, j.last_error) : '—')]];
    if (can('operator')) {
      cols.push(['', (j) => action('Run now', async () => {
        const res = await api('runJob', { params: { name: j.name } });
        notice('Asked to run ' + j.name + (res && res.leader_pid ? ' (leader pid ' + res.leader_pid + ').' : '; no leader right now, the next one will run it.'));
        setTimeout(refreshNow, 1500);
      }, 'small', 'Run ' + j.name + ' now')]);
    }
    list.replaceChildren(table(r.jobs, cols, 'No jobs.'));
  };
  await refreshNow();
};

VIEWS.blocklists = async (main, _args, ctx) => {
  const list = h('div');
  main.append(h('h1', {}, 'Blocklists'));
  if (can('admin')) {
    const name = h('input', { required: true, maxlength: 64, spellcheck: 'false' });
    const url = h('input', { type: 'url', required: true, placeholder: 'https://...', spellcheck: 'false' });
    const jail = h('select', { required: true });
    const hours = h('input', { type: 'number', min: 0.1, max: 720, step: 'any', value: 24, style: 'width:6em' });
    const on = h('input', { type: 'checkbox', checked: true });
    const form = h('form', { class: 'inline' }, field('Name', name), field('URL', url), field('Jail', jail),
      field('Every (hours)', hours), field('Enabled', on), h('button', { type: 'submit' }, 'Add blocklist'));
    onSubmit(form, async () => {
      const r = await api('newBlocklist', { body: { name: name.value.trim(), url: url.value.trim(), jail: jail.value,
        interval_s: Math.round(Number(hours.value) * 3600), enabled: on.checked } });
      notice('Blocklist ' + r.name + ' added.');
      name.value = url.value = '';
      await load();
    });
    main.append(box('Add a blocklist', form));
    api('jails').then((r) => jail.replaceChildren(...r.jails.map((j) => h('option', { value: j.name }, j.name))), showError);
  }
  main.append(box('Blocklists', list));
  let last = '';
  const load = async () => {
    const r = await api('blocklists');
    const key = JSON.stringify(r.blocklists);
    if (!alive(ctx) || key === last) return;
    last = key;
    const cols = [['Name', (b) => h('span', { class: 'mono' }, b.name)],
      ['URL', (b) => h('span', { class: 'mono small' }, b.url), 'hide-sm'], ['Jail', (b) => jailLink(b.jail)],
      ['Every', (b) => dur(b.interval_s)], ['Enabled', (b) => (b.enabled ? 'yes' : h('span', { class: 'badge warn' }, 'off'))],
      ['Last run', (b) => time(b.last_run, 'never')], ['Status', (b) => statusBadge(b.last_status)],
      ['Entries', (b) => num(b.last_count), 'num hide-sm'], ['Added', (b) => num(b.last_added), 'num hide-sm'],
      ['Invalid', (b) => (b.last_invalid ? h('span', { title: b.last_invalid_examples.join('\n') }, num(b.last_invalid)) : num(b.last_invalid)), 'num hide-sm'],
      ['Next due', (b) => (b.next_due ? rel(b.next_due) : b.enabled ? 'at the next check' : '—'), 'hide-sm'],
      ['Last error', (b) => (b.last_error ? h('pre', {}, b.last_error) : '—')]];
    if (can('operator')) {
      cols.push(['', (b) => h('div', { class: 'row' },
        action('Run now', async () => {
          const res = await api('runBlocklist', { params: { name: b.name } });
          notice('Asked to import ' + b.name + (res && res.leader_pid ? ' (leader pid ' + res.leader_pid + ').' : '; no leader right now, the next one will run it.'));
          setTimeout(refreshNow, 1500);
        }, 'small', 'Run blocklist ' + b.name + ' now'),
        can('admin') ? action('Delete', async () => {
          if (!confirm('Delete the blocklist "' + b.name + '"? Its bans stay until the jail\'s bantime ends.')) return;
          await api('deleteBlocklist', { params: { name: b.name } });
          notice('Blocklist ' + b.name + ' deleted.');
          await load();
        }, 'danger small', 'Delete blocklist ' + b.name) : null)]);
    }
    list.replaceChildren(table(r.blocklists, cols, 'No blocklists.'));
  };
  ctx.refresh = load;
  await refreshNow();
};

VIEWS.tokens = async (main, _args, ctx) => {
  const name = h('input', { required: true, maxlength: 64, spellcheck: 'false' });
  const role = h('select', {}, ROLES.filter(can).map((r) => h('option', { value: r }, r)));
  const days = h('input', { type: 'number', min: 1, placeholder: 'never', style: 'width:7em' });
  const secret = h('div');
  const list = h('div');
  const form = h('form', { class: 'inline' }, field('Name', name), field('Role', role), field('Expires in days', days),
    h('button', { type: 'submit' }, 'Create token'));
  const load = async () => {
    const r = await api('tokens');
    if (!alive(ctx)) return;
    list.replaceChildren(table(r.tokens, [
      ['Name', (t) => t.name], ['Role', (t) => t.role], ['Owner', (t) => t.owner || '(CLI)', 'hide-sm'],
      ['Created', (t) => time(t.created), 'hide-sm'], ['Expires', (t) => time(t.expires_at, 'never')],
      ['Last used', (t) => time(t.last_used, 'never')],
      ['', (t) => action('Revoke', async () => {
        if (!confirm('Revoke the token "' + t.name + '"? Scripts using it stop working.')) return;
        await api('revokeToken', { params: { id: t.id } });
        notice('Token ' + t.name + ' revoked.');
        await load();
      }, 'danger small', 'Revoke token ' + t.name)],
    ], 'No tokens.'));
  };
  onSubmit(form, async () => {
    const body = { name: name.value.trim(), role: role.value };
    if (days.value) body.expires_in_days = Number(days.value);
    const r = await api('newToken', { body });
    const out = h('input', { class: 'secret', readonly: true, value: r.token, 'aria-label': 'New token' });
    const copy = h('button', { type: 'button', class: 'small' }, 'Copy');
    copy.addEventListener('click', async () => {
      out.select();
      try { await navigator.clipboard.writeText(r.token); } catch (_) { document.execCommand('copy'); }
      copy.textContent = 'Copied';
    });
    secret.replaceChildren(h('div', { class: 'box secret-box' },
      h('p', {}, h('strong', {}, 'Token "' + r.name + '" created. It is shown only this once: copy it now.')),
      h('div', { class: 'row' }, out, copy),
      h('p', { class: 'muted small' }, 'Use it as: Authorization: Bearer <token>'),
      h('button', { type: 'button', class: 'secondary small', onclick: () => secret.replaceChildren() }, 'Done')));
    out.select();
    name.value = '';
    await load();
  });
  main.append(h('h1', {}, 'API tokens'), box('New token', form, secret),
    box(can('admin') ? 'All tokens' : 'Your tokens', list));
  await load();
};

VIEWS.users = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Users'));
  if (!can('admin')) { main.append(h('p', {}, 'Only admins manage users.')); return; }
  const roleSelect = (sel) => h('select', {}, ROLES.map((r) => h('option', { value: r, selected: r === sel }, r)));
  const uname = h('input', { required: true, autocomplete: 'off', spellcheck: 'false' });
  const upass = h('input', { type: 'password', required: true, minlength: 12, autocomplete: 'new-password' });
  const urole = roleSelect('viewer');
  const form = h('form', { class: 'inline' }, field('Username', uname), field('Password', upass), field('Role', urole),
    h('button', { type: 'submit' }, 'Add user'));
  const list = h('div');
  const load = async () => {
    const r = await api('users');
    if (!alive(ctx)) return;
    list.replaceChildren(table(r.users, [
      ['User', (u) => u.name + (me && u.name === me.username ? ' (you)' : '')], ['Role', (u) => u.role],
      ['Created', (u) => time(u.created), 'hide-sm'], ['Changed', (u) => time(u.updated), 'hide-sm'],
      ['', (u) => editUser(u, roleSelect, load)],
    ], 'No users.'));
  };
  onSubmit(form, async () => {
    await api('newUser', { body: { username: uname.value.trim(), password: upass.value, role: urole.value } });
    notice('User ' + uname.value.trim() + ' created.');
    uname.value = upass.value = '';
    await load();
  });
  main.append(box('Add a user', form), box('All users', list));
  await load();
};

function editUser(u, roleSelect, reload) {
  const role = roleSelect(u.role);
  const pass = h('input', { type: 'password', minlength: 12, autocomplete: 'new-password', placeholder: 'unchanged' });
  const form = h('form', { class: 'inline' }, field('Role', role), field('New password', pass),
    h('button', { type: 'submit', class: 'small' }, 'Save'));
  onSubmit(form, async () => {
    const body = {};
    if (role.value !== u.role) body.role = role.value;
    if (pass.value) body.password = pass.value;
    if (!Object.keys(body).length) throw new Error('Nothing changed.');
    await api('changeUser', { params: { name: u.name }, body });
    notice('User ' + u.name + ' updated; their sessions were ended.');
    if (me && u.name === me.username) { sessionEnded('Your account changed: please log in again.'); return; }
    await reload();
  });
  return h('div', { class: 'row top' },
    h('details', {}, h('summary', {}, 'Edit'), form),
    action('Delete', async () => {
      if (!confirm('Delete the user "' + u.name + '" with their sessions and tokens?')) return;
      await api('deleteUser', { params: { name: u.name } });
      notice('User ' + u.name + ' deleted.');
      await reload();
    }, 'danger small', 'Delete user ' + u.name));
}

// ---------- start ----------
async function start() {
  $('banner-close').addEventListener('click', hideBanner);
  // the skip link must not change the hash (that is the router's)
  document.querySelector('.skip').addEventListener('click', (ev) => { ev.preventDefault(); $('main').focus(); });
  try {
    const s = await api('setupState');
    if (s && s.complete === false) { renderSetup(); return; }
    me = await api('session');
  } catch (e) {
    if (e.status === 401) return; // the login form is up (sessionEnded)
    renderLogin();
    showError(e);
    return;
  }
  setChrome();
  route();
}
start();
