// One jail (counters, controls, settings, ignore list, bans), current bans, and the IP view.
import {
  h, api, state, alive, may, box, card, kv, num, dur, time, expires, muted, table, field, onSubmit, action,
  notice, actingOn, unbanBtn, ipLink, jailLink, link, hash, country, statusBadge, matches, plural, VIEWS,
} from './core.js';
import { jailList } from './more.js';

const rerender = () => state.rerender();
const idleSet = {}; // jail -> idle as last set from this page (fail2ban 1.0 cannot be asked)
const list = (xs) => (xs && xs.length ? h('ul', {}, xs.map((x) => h('li', { class: 'mono' }, x))) : '—');
const yes = (b) => (b == null ? '—' : b ? 'yes' : 'no');

VIEWS.jails = async (main, args, ctx) => {
  const name = args[0];
  if (!name) { await jailList(main, ctx); return; }
  let j;
  try { j = await api('jail', { params: { jail: name } }); } catch (e) {
    // a stopped jail is not in fail2ban any more: say so, and offer to start it (its configuration defines it)
    if (e.status !== 404 || !alive(ctx)) throw e;
    main.append(h('p', {}, link('← Jails', 'jails')), h('h1', { class: 'row' }, 'Jail ', h('span', { class: 'mono' }, name),
      h('span', { class: 'badge bad' }, 'not running')), h('p', {}, e.message), controls({ name, active: false }));
    return;
  }
  if (!alive(ctx)) return;
  if (j.idle == null && j.active !== false && name in idleSet) j.idle = idleSet[name];
  if (j.active === false) delete idleSet[name];
  // fail2ban answers only for a running jail; `active` false (a configured jail that is stopped) comes from builds
  // that also read the configuration
  const state_ = j.active === false ? h('span', { class: 'badge bad' }, 'stopped')
    : j.idle ? h('span', { class: 'badge warn' }, 'idle') : h('span', { class: 'badge ok' }, 'running');
  const cards = (x) => h('div', { class: 'cards' }, card(x.currently_banned, 'banned now'), card(x.total_banned, 'banned in total'),
    card(x.currently_failed, 'failing now'), card(x.total_failed, 'failures in total'));
  const counters = h('div', {}, cards(j));
  main.append(h('p', {}, link('← Jails', 'jails')), h('h1', { class: 'row' }, 'Jail ', h('span', { class: 'mono' }, j.name), state_),
    counters);
  main.append(controls(j));
  const running = j.active !== false;
  const inc = j.bantime_increment;
  main.append(box('Settings', kv('Ban time', dur(j.bantime), 'Find time', dur(j.findtime), 'Max retry', num(j.maxretry),
    ...(inc ? ['Ban time increment', inc.enabled ? 'on, factor ' + inc.factor + (inc.maxtime ? ', at most ' + dur(inc.maxtime) : '') : 'off'] : []),
    ...(j.filter ? ['Filter', h('span', { class: 'mono' }, j.filter)] : []), ...(j.backend ? ['Backend', j.backend] : []),
    'Log paths', list(j.logpaths), 'Actions', list(j.actions)), may('jailSettings') && running ? settingsForm(j) : null));
  // a stopped jail has no runtime to change: start it first (its settings and ignore list live in its files)
  if (running) main.append(ignoreList(j));
  if (running && may('ban', 'operator')) {
    const ta = h('textarea', { id: 'ban-ips', rows: 4, spellcheck: 'false', placeholder: '203.0.113.7\n198.51.100.0/24' });
    const form = h('form', {}, h('label', { for: 'ban-ips' }, 'Addresses or networks to ban, one per line'), ta,
      h('p', {}, h('button', { type: 'submit' }, 'Ban in ' + j.name)));
    onSubmit(form, async () => {
      const ips = ta.value.split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);
      if (!ips.length) throw new Error('Enter at least one address or network.');
      const r = await api('ban', { params: { jail: j.name }, body: { ips } });
      rerender();
      notice('Banned ' + r.banned.length + (r.banned.length ? ': ' + r.banned.join(', ') : '') +
        (r.already_banned.length ? '. Already banned: ' + r.already_banned.join(', ') : '') + '.');
    });
    main.append(box('Ban', form));
  }
  // its current bans, a page at a time in the server's order (banPages), filtered by address prefix or network on
  // the server: one page sorted or filtered alone would mislead
  const cols = [['Address', (r) => ipLink(r.ip), '', 'address'],
    ...(j.banned.some((r) => 'country' in r) ? [['Country', (r) => country(r.country), 'hide-sm']] : []),
    ['Banned', (r) => time(r.banned_at), 'hide-sm', 'banned_at'], ['Expires', (r) => expires(r.expires_at), '', 'expires_at']];
  // after an unban the same sort and page again (a rerender would start over in address order)
  if (may('unban', 'operator')) cols.push(['', (r) => unbanBtn(r.ip, j.name, () => state.refreshNow())]);
  const pages = banPages(cols);
  const search = h('input', { type: 'search', spellcheck: 'false', autocapitalize: 'none', placeholder: '203.0.113. or 198.51.100.0/24',
    'aria-label': 'Filter the bans: address starts with, or network' });
  const filter = () => { const v = search.value.trim(); return v.includes('/') ? { network: v } : v ? { prefix: v } : {}; };
  const head = h('div', { class: 'row spread' }), out = h('div');
  const prev = h('button', { type: 'button', class: 'secondary small' }, 'Previous page');
  const next = h('button', { type: 'button', class: 'secondary small' }, 'Next page');
  const pager = h('div', { class: 'row pager' }, prev, next);
  pages.pager(prev, next);
  const searchRow = h('p', {}, search);
  const draw = (x) => {
    const total = x.bans_total ?? x.banned.length, many = x.currently_banned ?? total;
    head.replaceChildren(h('h2', {}, 'Banned now (' + num(total) + ')'),
      ...(many && may('jailUnbanAll') ? [action('Unban all', async () => {
        if (!confirm('Unban all ' + num(many) + ' addresses in ' + x.name + '?')) return;
        const r = await api('jailUnbanAll', { params: { jail: x.name } });
        rerender();
        notice('Unbanned ' + num(r.unbanned) + ' in ' + x.name + '.');
      }, 'danger small', 'Unban all addresses in ' + x.name)] : []));
    searchRow.hidden = many <= 10 && !search.value;
    pages.answered(x.next_cursor);
    prev.disabled = pages.page === 0;
    next.disabled = !x.next_cursor;
    pager.hidden = pages.page === 0 && !x.next_cursor;
    swapTable(out, table(x.banned, cols, search.value ? 'No ban matches.' : 'No address is banned in this jail.', Infinity, pages.sort));
  };
  main.append(h('section', { class: 'box', 'aria-label': 'Banned now' }, head, searchRow, out, pager));
  draw(j);
  let typing = null;
  search.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(() => { pages.first(); state.refreshNow(); }, 300); });
  // live events (a ban or unban from anywhere, the leader's sync), a sort, a page, a filter: the counters and the
  // bans follow in place; the forms above keep what is typed in them
  let key = JSON.stringify([j.currently_banned, j.total_banned, j.currently_failed, j.total_failed, j.banned, j.next_cursor]);
  ctx.refresh = async () => {
    const query = { ...filter(), ...pages.query() };
    const x = await api('jail', { params: { jail: name }, query });
    if (!alive(ctx)) return;
    if (!x.banned.length && pages.page > 0) { pages.first(); await ctx.refresh(); return; } // its last rows went
    const now = JSON.stringify([x.currently_banned, x.total_banned, x.currently_failed, x.total_failed, x.banned, x.next_cursor, query]);
    if (now === key) return;
    key = now;
    counters.replaceChildren(cards(x));
    draw(x);
  };
};

function controls(j) {
  const btns = [];
  const params = { jail: j.name };
  const run = (call, label, msg, cls = 'small') => action(label, async () => {
    const r = await call();
    rerender();
    notice(msg + (r && r.active === false ? ' (stopped).' : '.'));
  }, cls, label + ' jail ' + j.name);
  if (j.active === false) { if (may('jailStart')) btns.push(run(() => api('jailStart', { params }), 'Start', 'Started ' + j.name + '; fail2ban bans again the addresses whose ban time has not run out')); } else if (may('jailStop')) {
    btns.push(action('Stop', async () => {
      if (!confirm('Stop ' + j.name + '? fail2ban lifts its bans and stops watching its logs until the jail is started again; a start (or a restart of fail2ban) bans again the addresses whose ban time has not run out.')) return;
      await api('jailStop', { params: { jail: j.name } });
      rerender();
      notice('Stopped ' + j.name + ': its bans are lifted until it starts again.');
    }, 'danger small', 'Stop jail ' + j.name));
  }
  if (may('jailReload') && j.active !== false) btns.push(run(() => api('jailReload', { params }), 'Reload', 'Reloaded ' + j.name, 'secondary small'));
  if (may('jailIdle') && j.active !== false) {
    const setIdle = (idle, label) => action(label, async () => {
      const r = await api('jailIdle', { params, body: { idle } });
      idleSet[j.name] = r.idle;
      rerender();
      notice(j.name + (r.idle ? ' is idle: it bans nobody until resumed.' : ' is watching again.'));
    }, 'secondary small');
    // fail2ban cannot say whether a jail is idle: when the API does not know, the jail is taken as watching
    // (its state badge says "running") and one button is offered, not both (issue 23 item 8)
    btns.push(j.idle ? setIdle(false, 'Resume (leave idle)') : setIdle(true, 'Set idle'));
  }
  return btns.length ? h('div', { class: 'row controls', role: 'group', 'aria-label': 'Jail controls' }, btns) : '';
}

function settingsForm(j) {
  const n = (v, min) => h('input', { type: 'number', value: v ?? '', min, step: 1, style: 'width:8em' });
  const f = { bantime: n(j.bantime, -1), findtime: n(j.findtime, 1), maxretry: n(j.maxretry, 1) };
  const inc = j.bantime_increment || null;
  const g = inc ? {
    enabled: h('input', { type: 'checkbox', checked: !!inc.enabled }), factor: h('input', { type: 'number', step: 'any', value: inc.factor ?? '', style: 'width:6em' }),
    maxtime: n(typeof inc.maxtime === 'number' ? inc.maxtime : null, 1), rndtime: n(typeof inc.rndtime === 'number' ? inc.rndtime : null, 0), overalljails: h('input', { type: 'checkbox', checked: !!inc.overalljails }),
    formula: h('input', { value: inc.formula ?? '', spellcheck: 'false' }), multipliers: h('input', { value: inc.multipliers ?? '', spellcheck: 'false' }),
  } : null;
  const form = h('form', { class: 'stack wide', 'aria-label': 'Change settings' },
    h('div', { class: 'inline' }, field('Ban time (s, -1 = permanent)', f.bantime), field('Find time (s)', f.findtime),
      field('Max retry', f.maxretry)),
    g ? h('fieldset', {}, h('legend', {}, 'Ban time increment'), h('div', { class: 'inline' }, field('Enabled', g.enabled),
      field('Factor', g.factor), field('Max time (s)', g.maxtime), field('Random extra (s)', g.rndtime),
      field('Across all jails', g.overalljails), field('Formula', g.formula), field('Multipliers', g.multipliers))) : null,
    h('div', {}, h('button', { type: 'submit' }, 'Save settings')));
  onSubmit(form, async () => {
    const body = {};
    for (const k of Object.keys(f)) if (f[k].value !== '' && Number(f[k].value) !== j[k]) body[k] = Number(f[k].value);
    if (g) {
      // only what was changed (any subset is accepted); numbers as numbers, empty text means "leave it"
      const b = {};
      for (const k of ['enabled', 'overalljails']) if (g[k].checked !== !!inc[k]) b[k] = g[k].checked;
      for (const k of ['formula', 'multipliers']) if (g[k].value.trim() !== String(inc[k] ?? '') && g[k].value.trim()) b[k] = g[k].value.trim();
      for (const k of ['factor', 'maxtime', 'rndtime']) {
        const v = g[k].value.trim();
        if (v !== '' && v !== String(inc[k] ?? '')) b[k] = Number(v);
      }
      if (Object.keys(b).length) body.bantime_increment = b;
    }
    if (!Object.keys(body).length) throw new Error('Nothing changed.');
    await api('jailSettings', { params: { jail: j.name }, body });
    rerender();
    notice('Saved ' + Object.keys(body).join(', ') + ' for ' + j.name + ' (applied and kept across reloads).');
  });
  return h('details', { class: 'edit' }, h('summary', {}, 'Change settings'), form);
}

function ignoreList(j) {
  const entries = j.ignoreip || [];
  const editable = may('ignoreAdd', 'operator');
  const rows = entries.map((e) => h('li', { class: 'row' }, h('span', { class: 'mono' }, e),
    editable && may('ignoreRemove', 'operator') ? action('Remove', async () => {
      await api('ignoreRemove', { params: { jail: j.name, entry: e } });
      rerender();
      notice('Removed ' + e + ' from the ignore list of ' + j.name + '.');
    }, 'danger small', 'Remove ' + e + ' from the ignore list') : null));
  let form = null;
  if (editable) {
    const input = h('input', { spellcheck: 'false', required: true, placeholder: '192.0.2.0/24 2001:db8::1' });
    form = h('form', { class: 'inline' }, field('Add addresses or networks (space or comma separated)', input),
      h('button', { type: 'submit' }, 'Add to ignore list'));
    onSubmit(form, async () => {
      const add = input.value.split(/[\s,]+/).filter(Boolean);
      await api('ignoreAdd', { params: { jail: j.name }, body: { entries: add } });
      rerender();
      notice('Added ' + add.join(', ') + ' to the ignore list of ' + j.name + '.');
    });
  }
  return box('Ignore list (never banned)', rows.length ? h('ul', { class: 'plain' }, rows) : muted('Empty.'), form);
}

// Current bans, one page at a time (issue 23 item 7): the server pages (limit, cursor) and filters (jail, address
// prefix or network); the page never builds more than one page of rows, whatever the number of bans. A header click
// sorts on the server, across every page (banPages); an unban takes its row out in place and the focus moves to the
// next row's button.
const PAGE_SIZES = [50, 100, 250, 500];
VIEWS.bans = async (main, _args, ctx) => {
  const q = ctx.query || {};
  const search = h('input', { type: 'search', value: q.q || '', spellcheck: 'false', autocapitalize: 'none', placeholder: '203.0.113. or 198.51.100.0/24' });
  const jail = h('select', {}, h('option', { value: '' }, 'every jail'));
  const size = h('select', {}, PAGE_SIZES.map((n) => h('option', { value: n, selected: n === 100 }, n + ' rows')));
  const form = h('form', { class: 'inline', role: 'search', 'aria-label': 'Filter bans' }, field('Address starts with, or network', search),
    field('Jail', jail), field('Page size', size), h('button', { type: 'submit' }, 'Filter'));
  const title = h('h1', {}, 'Current bans');
  const count = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const out = h('div', { class: 'reserve' });
  const prev = h('button', { type: 'button', class: 'secondary small' }, 'Previous page');
  const next = h('button', { type: 'button', class: 'secondary small' }, 'Next page');
  const pager = h('div', { class: 'row pager' }, prev, next);
  main.append(title, form, count, out, pager);
  api('jails').then((r) => { for (const j of r.jails) jail.append(h('option', { value: j.name, selected: j.name === q.jail }, j.name)); }, () => {});
  if (q.jail) jail.append(h('option', { value: q.jail, selected: true }, q.jail));
  let shown = [];
  const cols = [['Address', (b) => ipLink(b.ip), 'nowrap', 'address'], ['Jail', (b) => jailLink(b.jail), 'nowrap'],
    ['Country', (b) => country(b.country), 'hide-sm'],
    ['Banned', (b) => time(b.banned_at, '—', 'hour'), 'hide-sm nowrap', 'banned_at'],
    ['Expires', (b) => expires(b.expires_at, 'hour'), 'hide-sm nowrap', 'expires_at']];
  const pages = banPages(cols);
  const unbanned = (b) => (btn) => {
    // in place: the row goes, the focus goes to the next row's Unban (or the previous one's), the message goes
    // to the count above the table (the rows are redrawn by the live update that follows)
    const tr = btn.closest('tr');
    actingOn(count);
    const sib = tr && (tr.nextElementSibling || tr.previousElementSibling);
    shown = shown.filter((x) => !(x.ip === b.ip && x.jail === b.jail));
    if (tr) tr.remove();
    const target = sib && sib.querySelector('button');
    if (target) target.focus({ preventScroll: true });
  };
  if (may('unban')) {
    cols.push(['', (b) => h('div', { class: 'row nowrap' }, unbanBtn(b.ip, b.jail, unbanned(b)),
      h('span', { class: 'hide-sm' }, unbanBtn(b.ip, null, unbanned(b), 'Everywhere')))]);
  }
  const filters = () => {
    const v = search.value.trim();
    return { jail: jail.value, limit: size.value, ...(v.includes('/') ? { network: v } : v ? { prefix: v } : {}) };
  };
  let lastKey = '';
  const load = async () => {
    const f = filters(), page = pages.page;
    const r = await api('bans', { query: { ...f, ...pages.query() } });
    if (!alive(ctx)) return;
    let bans = r.bans || [], total = r.total ?? null, more = r.next_cursor;
    if (r.next_cursor === undefined) {
      // a server without paging answers every ban: filter, sort and page here (still one page of rows at most)
      const v = search.value.trim().toLowerCase();
      if (v && !v.includes('/')) bans = bans.filter((b) => b.ip.toLowerCase().startsWith(v));
      bans = pages.sorted(bans);
      total = bans.length;
      const start = page * Number(f.limit);
      more = start + Number(f.limit) < bans.length ? 'local' : null;
      bans = bans.slice(start, start + Number(f.limit));
    }
    if (!bans.length && page > 0) { pages.first(); await load(); return; } // the page's last rows went
    pages.answered(more);
    shown = bans;
    const first = page * Number(f.limit);
    title.textContent = 'Current bans' + (total != null ? ' (' + num(total) + ')' : '');
    count.textContent = bans.length ? 'Showing ' + num(first + 1) + '–' + num(first + bans.length) + (total != null ? ' of ' + num(total) : '') : '';
    prev.disabled = page === 0;
    next.disabled = !more;
    pager.hidden = page === 0 && !more;
    const key = JSON.stringify([f, page, pages.query(), bans]);
    if (key === lastKey) return;
    lastKey = key;
    swapTable(out, table(shown, cols, search.value || jail.value ? 'No ban matches.' : 'No address is banned right now.', Infinity, pages.sort));
  };
  const first = () => { pages.first(); return state.refreshNow(); };
  onSubmit(form, first);
  let typing = null;
  search.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(first, 300); });
  jail.addEventListener('change', first);
  size.addEventListener('change', first);
  pages.pager(prev, next);
  ctx.refresh = load;
  await state.refreshNow();
};

// The server's order of a list of current bans and the cursors of its pages: sorting one page of 100,000 bans would
// mislead ("which bans end soonest?"). `cols` name the server's order they sort by (address, banned_at,
// expires_at: table's `sort.server`); a header click starts again from the first page in the new order, Previous and
// Next walk the cursors that order answered. Every load goes through the view's refresh (one at a time, the last
// state wins): a quick second click is not overtaken by the first one's answer.
function banPages(cols) {
  const p = { sort: { by: 0, desc: false }, cursors: [null], page: 0 };
  const reload = () => state.refreshNow();
  p.sort.server = (i, desc) => { Object.assign(p.sort, { by: i, desc }); p.first(); reload(); };
  p.first = () => { p.cursors = [null]; p.page = 0; };
  const cursor = () => (p.cursors[p.page] === 'local' ? null : p.cursors[p.page]);
  p.query = () => ({ sort: cols[p.sort.by][3], order: p.sort.desc ? 'desc' : 'asc', cursor: cursor() });
  p.answered = (next) => { p.cursors[p.page + 1] = next; };
  p.hasNext = () => !!p.cursors[p.page + 1];
  // an older server without sorts answers every ban: its rows sorted here, all of them (so still every page)
  p.sorted = (rows) => {
    const k = cols[p.sort.by][3];
    if (k === 'address' && !p.sort.desc) return rows;
    const at = (r) => (k === 'address' ? r.ip : r[k] ?? '~'); // no end: after every time
    const list = [...rows].sort((a, b) => (at(a) < at(b) ? -1 : at(a) > at(b) ? 1 : 0));
    return p.sort.desc ? list.reverse() : list;
  };
  p.pager = (prev, next) => {
    prev.addEventListener('click', () => { if (p.page > 0) { p.page--; reload(); } });
    next.addEventListener('click', () => { if (p.hasNext()) { p.page++; reload(); } });
  };
  return p;
}

// Replace a list's table; the focused control keeps the focus (a sort button by its column, whose arrow changed;
// another by its label and text).
function swapTable(out, next) {
  const a = document.activeElement;
  const mine = a && out.contains(a);
  const col = mine && a.dataset.col != null ? a.dataset.col : null;
  const key = mine && col == null ? [a.tagName, a.getAttribute('aria-label'), a.textContent] : null;
  out.replaceChildren(next);
  let back = col != null ? out.querySelector('button[data-col="' + col + '"]') : null;
  if (key) back = [...out.querySelectorAll(key[0])].find((el) => el.getAttribute('aria-label') === key[1] && el.textContent === key[2]);
  if (back) back.focus({ preventScroll: true });
}

// --- IP view: an address or a network, in words ---
const isNetwork = (s) => s.includes('/');

VIEWS.ips = async (main, args, ctx) => {
  const input = h('input', { required: true, value: args.join('/') || '', spellcheck: 'false', autocapitalize: 'none', placeholder: '203.0.113.7 or 198.51.100.0/24' });
  const form = h('form', { class: 'inline', role: 'search' }, field('IP address or network', input), h('button', { type: 'submit' }, 'Look up'));
  onSubmit(form, async () => { location.hash = hash('ips') + '/' + input.value.trim().split('/').map(encodeURIComponent).join('/'); });
  main.append(h('h1', {}, 'IP lookup'), form);
  const ip = args.join('/');
  if (!ip) { input.focus(); return; }
  let r;
  try { r = await api('ip', { params: { ip } }); } catch (e) {
    // older servers refuse networks here: show what the network's bans and history say instead
    if (!(isNetwork(ip) && e.status === 400)) throw e;
    r = await networkFallback(ip);
  }
  if (!alive(ctx)) return;
  renderIp(main, r, ip);
};

async function networkFallback(net) {
  const [bans, hist] = await Promise.all([api('bans'), api('history', { query: { ip: net, limit: 1000 } }).catch(() => ({ items: [] }))]);
  const events = hist.items || [];
  const inside = new Set(events.map((e) => e.ip));
  const current = bans.bans.filter((b) => b.ip === net || inside.has(b.ip) || inCidr(b.ip, net));
  const bansOnly = events.filter((e) => e.event === 'ban');
  const jails = {};
  for (const e of bansOnly) jails[e.jail] = (jails[e.jail] || 0) + 1;
  return { ip: net, network: true, current_bans: current, events, truncated: !!hist.next_cursor,
    totals: { bans: bansOnly.length, unbans: events.length - bansOnly.length, jails },
    first_seen: events.length ? events[events.length - 1].at : null, last_seen: events.length ? events[0].at : null };
}

// IPv4 CIDR membership (IPv6 networks rely on the history match above)
function inCidr(ip, net) {
  const v4 = (s) => { const p = s.split('.').map(Number); return p.length === 4 && p.every((x) => x >= 0 && x < 256) ? ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0 : null; };
  const [base, bits] = net.split('/');
  const a = v4(ip), b = v4(base), n = Number(bits);
  if (a == null || b == null || !(n >= 0 && n <= 32)) return false;
  const mask = n === 0 ? 0 : (~0 << (32 - n)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

function renderIp(main, r, asked) {
  const ip = r.ip || asked;
  const bans = r.current_bans || [];
  const net = r.network || isNetwork(ip);
  main.append(h('h2', { class: 'row ipt' }, h('span', { class: 'mono' }, ip), bans.length
    ? h('span', { class: 'badge bad' }, (net ? plural(bans.length, 'ban') + ' now' : 'banned now in ' + plural(bans.length, 'jail')))
    : h('span', { class: 'badge ok' }, 'not banned now')));
  const events = r.events || [];
  const totals = r.totals || {};
  const banCount = totals.bans ?? r.bans ?? events.filter((e) => e.event === 'ban').length;
  const facts = [net ? 'Network' : 'Address', h('span', { class: 'mono' }, ip)];
  if (r.country !== undefined && !net) facts.push('Country', country(r.country));
  facts.push('Times banned', num(banCount));
  if (totals.unbans != null) facts.push('Times unbanned', num(totals.unbans));
  const perJail = Object.entries(totals.jails || {}).sort((a, b) => b[1] - a[1]);
  if (perJail.length) facts.push('Bans per jail', h('span', {}, perJail.map(([jl, c], i) => [i ? ', ' : '', jailLink(jl), ' ' + num(c)])));
  facts.push('First seen', time(r.first_seen, 'never'), 'Last seen', time(r.last_seen, 'never'));
  if (r.ends_at !== undefined) facts.push('Current ban ends', r.ends_at ? time(r.ends_at) : 'not banned');
  main.append(box('Summary', kv(...facts)));
  if (bans.length) {
    const cols = [['Jail', (b) => jailLink(b.jail)], ['Banned', (b) => time(b.banned_at)], ['Expires', (b) => expires(b.expires_at)]];
    if (net) cols.unshift(['Address', (b) => ipLink(b.ip)]);
    if (may('unban', 'operator')) cols.push(['', (b) => unbanBtn(b.ip || ip, b.jail, rerender)]);
    main.append(box('Current bans', table(bans, cols)));
    if (!net && may('unbanAll', 'operator') && bans.length > 1) main.append(h('p', {}, unbanBtn(ip, null, rerender, 'Unban everywhere')));
  }
  main.append(box('History (' + plural(events.length, 'event') + (r.truncated ? ', the newest only' : '') + ')', table(events, [
    ['When', (e) => time(e.at)], ['Event', (e) => statusBadge(e.event)], ...(net ? [['Address', (e) => ipLink(e.ip)]] : []),
    ['Jail', (e) => jailLink(e.jail)], ['Ban time', (e) => (e.event === 'ban' ? dur(e.bantime) : '—'), 'hide-sm'],
    ['Ends', (e) => (e.event === 'ban' ? (e.ends_at ? time(e.ends_at) : e.bantime < 0 ? 'never' : '—') : '—'), 'hide-sm'],
    ['Times banned', (e) => num(e.bancount), 'num hide-sm'], ['Origin', (e) => e.origin || '—', 'hide-sm'],
    ['By', (e) => e.actor || '—', 'hide-sm'], ['Log lines', (e) => matches(e.matches), 'hide-sm'],
  ], 'Nothing recorded.')));
}
