// bangui web page, entry point: session, header, routing, setup and login. Talks only to the JSON API under
// /api/v1 with the session cookie. Views live in their own modules and register themselves in VIEWS.
import {
  $, h, api, can, may, state, hash, link, field, notice, showError, hideBanner, onSubmit, noteHealth, VIEWS,
} from './core.js';
import './dashboard.js';
import './jails.js';
import './admin.js';
import './config.js';
import './fleet.js';
import './notifications.js';

function sessionEnded(msg) {
  const wasIn = !!state.me;
  state.me = null;
  renderLogin();
  if (wasIn) notice(msg || 'Your session has ended: please log in again.');
}
state.sessionEnded = sessionEnded;

function setChrome() {
  const nav = $('nav'), who = $('who'), me = state.me;
  nav.hidden = who.hidden = !me;
  nav.replaceChildren();
  who.replaceChildren();
  if (!me) return;
  const items = [['Dashboard', ''], ['Bans', 'bans'], ['IP lookup', 'ips'], ['History', 'history'],
    ['Jobs', 'jobs'], ['Blocklists', 'blocklists']];
  // sections for APIs this server has and this role may use (OpenAPI x-required-role)
  if (may('logs', 'viewer') || may('filterTest', 'operator')) items.push(['Tools', 'tools']);
  if (may('configJails') || may('configFiles')) items.push(['Configuration', 'config']);
  if (may('audit')) items.push(['Audit', 'audit']);
  if (may('notifications')) items.push(['Notifications', 'notifications']);
  if (state.paths && may('fleetHosts', 'viewer')) items.push(['Hosts', 'hosts']); // shown in fleet mode only
  items.push(['Tokens', 'tokens']);
  if (can('admin')) items.push(['Users', 'users']);
  if (may('bouncers')) items.push(['Bouncers', 'bouncers']); // CrowdSec bouncer keys (admin)
  for (const [label, name] of items) {
    nav.append(h('a', { href: name ? hash(name) : '#/', 'data-view': name || 'dashboard', hidden: name === 'hosts' && !state.fleet }, label));
  }
  who.append(h('span', {}, me.username + ' (' + me.role + ')'),
    h('button', { type: 'button', class: 'secondary small', onclick: logout }, 'Log out'),
    h('button', { type: 'button', class: 'secondary small', onclick: logoutEverywhere }, 'Log out everywhere'));
}

async function logout() {
  try { await api('logout'); } catch (e) { if (!e.handled) showError(e); }
  state.me = null;
  renderLogin();
  notice('Logged out.');
}
async function logoutEverywhere() {
  if (!confirm('End all your sessions, on every device (this one too)?')) return;
  try {
    const r = await api('logoutAll');
    state.me = null;
    renderLogin();
    notice('Logged out everywhere' + (r && r.ended != null ? ' (' + r.ended + ' sessions ended).' : '.'));
  } catch (e) { showError(e); }
}

// "#/history?country=DE" -> [["history"], {country: "DE"}]
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const segs = path ? path.split('/').map((s) => { try { return decodeURIComponent(s); } catch (_) { return s; } }) : [];
  return [segs, Object.fromEntries(new URLSearchParams(qs || ''))];
}

// a view may hold something open (the log stream): let it go before the next view or the login form
function leaveView() {
  const old = state.current;
  if (old && old.cleanup) { try { old.cleanup(); } catch (_) { /* closing only */ } }
}

function route() {
  if (!state.me) return;
  const [segs, query] = parseHash();
  const name = segs[0] || 'dashboard';
  const view = VIEWS[name];
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  leaveView();
  const ctx = state.current = { refresh: null, busy: false, query };
  const main = $('main');
  main.replaceChildren();
  if (!view) {
    main.append(h('h1', {}, 'Not found'), h('p', {}, link('Back to the dashboard', '')));
    return;
  }
  document.title = 'bangui · ' + (name === 'dashboard' ? 'dashboard' : segs.join(' / '));
  Promise.resolve(view(main, segs.slice(1), ctx)).catch(showError);
}
state.route = route;

export async function refreshNow() {
  const ctx = state.current;
  if (!ctx.refresh || ctx.busy) return;
  ctx.busy = true;
  try {
    await ctx.refresh();
    if ($('banner').dataset.from === 'refresh') hideBanner(); // what failed works again (Redis, fail2ban back)
  } catch (e) { showError(e, 'refresh'); } finally { ctx.busy = false; }
}
state.refreshNow = refreshNow;

// The fail2ban banner on every page: shown while fail2ban does not answer, with what the server saw.
let f2bDown = false;
async function watchFail2ban() {
  if (!state.me || document.visibilityState !== 'visible') return;
  try {
    const v = await api('health');
    noteHealth(v);
    const f = (v && v.fail2ban) || {};
    const el = $('f2b');
    f2bDown = !f.reachable;
    el.hidden = !f2bDown;
    if (f2bDown) el.textContent = 'fail2ban is unreachable' + (f.error ? ': ' + f.error : '') + '. Bans and jail data cannot be shown or changed until it answers again.';
  } catch (_) { /* the next tick tries again; API errors show in views */ }
}
setInterval(() => { if (document.visibilityState === 'visible') { refreshNow(); watchFail2ban(); } }, 5000);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refreshNow(); });
window.addEventListener('hashchange', () => { hideBanner(); $('notice').hidden = true; route(); $('main').focus({ preventScroll: true }); });

// ---------- first run and login ----------
function renderSetup() {
  state.me = null;
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
    await loggedIn(await api('login', { body: { username: user.value, password: pass.value } }));
    notice('Admin ' + state.me.username + ' created; you are logged in.');
  });
  $('main').replaceChildren(h('div', { class: 'login' }, h('h1', {}, 'Welcome to bangui'),
    h('p', {}, 'No user exists yet. Create the first admin with the one-time setup token that bangui wrote to ',
      h('code', {}, '<data dir>/setup-token'), ' (by default ', h('code', {}, '/var/lib/bangui/setup-token'),
      '; readable only by the service user).'), form));
  token.focus();
}

function renderLogin() {
  leaveView();
  state.current = {};
  setChrome();
  $('f2b').hidden = true;
  const user = h('input', { required: true, autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { type: 'password', required: true, autocomplete: 'current-password' });
  const btn = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { class: 'stack' }, field('Username', user), field('Password', pass), h('div', {}, btn));
  onSubmit(form, async () => {
    let me;
    try {
      me = await api('login', { body: { username: user.value, password: pass.value } });
    } catch (e) {
      if (e.status === 429) lockFor(btn, Number(e.retryAfter) || 30);
      pass.value = '';
      throw e;
    }
    await loggedIn(me);
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

// After login: which routes this server has (sections for missing ones stay hidden), then the view.
async function loggedIn(me, openapi = null) {
  state.me = me;
  try { state.paths = ((openapi || await api('openapi')) || {}).paths || null; } catch (_) { state.paths = null; }
  setChrome();
  route();
  watchFail2ban();
}

async function start() {
  $('banner-close').addEventListener('click', hideBanner);
  // the skip link must not change the hash (that is the router's)
  document.querySelector('.skip').addEventListener('click', (ev) => { ev.preventDefault(); $('main').focus(); });
  // setup state, session and route list at once: one round trip before the first view
  const [setup, me, doc] = await Promise.allSettled([api('setupState'), api('session'), api('openapi')]);
  if (setup.status === 'fulfilled' && setup.value && setup.value.complete === false) { renderSetup(); return; }
  if (me.status === 'rejected') {
    renderLogin();
    if (me.reason.status !== 401) showError(me.reason);
    return;
  }
  await loggedIn(me.value, doc.status === 'fulfilled' ? doc.value : null);
}
start();
