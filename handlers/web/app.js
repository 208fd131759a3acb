// bangui web page, entry point: session, header, routing, setup and login. Talks only to the JSON API under
// /api/v1 with the session cookie. Views live in their own modules and register themselves in VIEWS.
import {
  $, h, api, can, may, state, hash, link, field, notice, showError, hideBanner, onSubmit, noteHealth, VIEWS,
  setPrefs, redrawing, describe, findDescribed, actingDesc, actingOn,
} from './core.js';
import { startLive, stopLive } from './live.js';
import './dashboard.js';
import './jails.js';
import './fleet.js';
import './notifications.js';
import './more.js';
import './advisor.js'; // after dashboard.js: it adds the advisor's counts to the dashboard

// Admin, configuration and form views load when first opened: the dashboard's cold load stays light (issue 23
// item 9). Each module registers its real views in VIEWS; the stub hands over to them.
function later(names, load) {
  for (const name of names) {
    const stub = async (...args) => {
      await load();
      if (VIEWS[name] === stub) throw new Error(`the page's module for #/${name} did not register it`);
      return VIEWS[name](...args);
    };
    VIEWS[name] = stub;
  }
}
later(['jobs', 'blocklists', 'tokens', 'bouncers', 'users'], () => import('./admin.js'));
later(['config', 'tools', 'audit'], () => import('./config.js'));
later(['configure'], () => import('./forms.js'));

function sessionEnded(msg) {
  const wasIn = !!state.me;
  state.me = null;
  stopLive();
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
  const items = [['Dashboard', ''], ['Jails', 'jails'], ['Bans', 'bans'], ['IP lookup', 'ips'], ['History', 'history']];
  if (may('offenders')) items.push(['Repeat offenders', 'offenders']);
  items.push(['Jobs', 'jobs'], ['Blocklists', 'blocklists']);
  // sections for APIs this server has and this role may use (the role each call needs: core.js EP)
  if (may('logs') || may('filterTest')) items.push(['Tools', 'tools']);
  if (may('advisor')) items.push(['Advisor', 'advisor']);
  if (may('configJails') || may('configFiles')) items.push(['Configuration', 'config']);
  if (may('audit')) items.push(['Audit', 'audit']);
  if (may('notifications')) items.push(['Notifications', 'notifications']);
  if (may('fleetHosts')) items.push(['Hosts', 'hosts']); // shown in fleet mode only
  items.push(['Tokens', 'tokens']);
  if (can('admin')) items.push(['Users', 'users']);
  if (may('bouncers')) items.push(['Bouncers', 'bouncers']); // CrowdSec bouncer keys (admin)
  if (may('preferences')) items.push(['Preferences', 'preferences']);
  for (const [label, name] of items) {
    nav.append(h('a', { href: name ? hash(name) : '#/', 'data-view': name || 'dashboard', hidden: name === 'hosts' && !state.fleet }, label));
  }
  who.append(h('span', {}, me.username + ' (' + me.role + ')'),
    h('button', { type: 'button', class: 'secondary small', onclick: logout }, 'Log out'),
    h('button', { type: 'button', class: 'secondary small', onclick: logoutEverywhere }, 'Log out everywhere'));
}

async function logout() {
  stopLive();
  try { await api('logout'); } catch (e) { if (!e.handled) showError(e); }
  state.me = null;
  renderLogin();
  notice('Logged out.');
}
async function logoutEverywhere() {
  if (!confirm('End all your sessions, on every device (this one too)?')) return;
  try {
    const r = await api('logoutAll');
    stopLive();
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

// keep: the same view is drawn again after a change (issue 23 item 1): scroll position, keyboard focus and the
// message beside the control survive the redraw (the old view's height is held until the new one is drawn).
function route(keep = false) {
  if (!state.me) return;
  const [segs, query] = parseHash();
  const name = segs[0] || 'dashboard';
  const view = VIEWS[name];
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const main = $('main');
  const y = window.scrollY;
  const focus = keep ? describe(document.activeElement) || actingDesc() : null;
  leaveView();
  const ctx = state.current = { refresh: null, busy: false, query };
  if (keep) { main.style.minHeight = main.offsetHeight + 'px'; redrawing(true); }
  main.replaceChildren();
  if (!view) {
    main.append(h('h1', {}, 'Not found'), h('p', {}, link('Back to the dashboard', '')));
    return;
  }
  document.title = 'bangui · ' + (name === 'dashboard' ? 'dashboard' : segs.join(' / '));
  Promise.resolve(view(main, segs.slice(1), ctx)).catch(showError).finally(() => {
    if (!keep) return;
    main.style.minHeight = '';
    window.scrollTo(0, y);
    const el = findDescribed(focus);
    if (el) el.focus({ preventScroll: true });
    redrawing(false);
  });
}
state.route = () => route(false);
state.rerender = () => route(true);

export async function refreshNow() {
  const ctx = state.current;
  if (!ctx.refresh) return;
  if (ctx.busy) { ctx.again = true; return; } // an event during a refresh: one more refresh after it
  ctx.busy = true;
  try {
    do {
      ctx.again = false;
      await ctx.refresh();
    } while (ctx.again && ctx === state.current);
    if ($('banner').dataset.from === 'refresh') hideBanner(); // what failed works again (Redis, fail2ban back)
  } catch (e) { showError(e, 'refresh'); } finally { ctx.busy = false; }
}
state.refreshNow = refreshNow;

// The fail2ban banner on every page: shown while fail2ban does not answer, with what the server saw (from the
// event stream, or from /health while the stream is down).
function noteFail2ban(f) {
  if (!f || !state.me) return;
  const el = $('f2b');
  el.hidden = f.reachable !== false;
  if (!el.hidden) el.textContent = 'fail2ban is unreachable' + (f.error ? ': ' + f.error : '') + '. Bans and jail data cannot be shown or changed until it answers again.';
}
state.noteFail2ban = noteFail2ban;
async function watchFail2ban() {
  if (!state.me || document.visibilityState !== 'visible') return;
  try {
    const v = await api('health');
    noteHealth(v);
    noteFail2ban({ reachable: !!(v && v.fail2ban && v.fail2ban.reachable), error: v && v.fail2ban && v.fail2ban.error });
  } catch (_) { /* the next tick tries again; API errors show in views */ }
}
state.poll = () => { refreshNow(); watchFail2ban(); };
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refreshNow(); });
window.addEventListener('hashchange', () => { hideBanner(); actingOn(null); $('notice').hidden = true; route(); $('main').focus({ preventScroll: true }); });

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

// After login: the user's preferences (time zone, date format, theme; defaults when the server has none), the view,
// the live event stream. Nothing else is needed first: the page knows each call's role (core.js EP).
async function loggedIn(me, prefs = null) {
  state.me = me;
  if (!prefs) prefs = await api('preferences').catch(() => null);
  setPrefs(prefs || {});
  setChrome();
  route();
  watchFail2ban();
  startLive();
}

async function start() {
  $('banner-close').addEventListener('click', hideBanner);
  // the skip link must not change the hash (that is the router's)
  document.querySelector('.skip').addEventListener('click', (ev) => { ev.preventDefault(); $('main').focus(); });
  // A page loaded without a session cookie hint asks nothing that would answer 401 (no console errors when logged
  // out); web.py marks the page when the browser sent a session cookie.
  const hinted = document.documentElement.dataset.session === '1';
  const [setup, me, prefs] = await Promise.allSettled([api('setupState'),
    hinted ? api('session') : Promise.reject(Object.assign(new Error('not logged in'), { status: 401 })),
    hinted ? api('preferences') : Promise.resolve(null)]);
  if (setup.status === 'fulfilled' && setup.value && setup.value.complete === false) { renderSetup(); return; }
  if (me.status === 'rejected') {
    renderLogin();
    if (me.reason.status !== 401) showError(me.reason);
    return;
  }
  await loggedIn(me.value, prefs.status === 'fulfilled' ? prefs.value : null);
}
start();
