// Configuration (jail catalogue, file editor with validation and diff, applied changes, server settings),
// Tools (filter tester, fail2ban's log) and the Audit view. Every section is shown only when the server has its
// API (issues 9 and 10) and the user's role may use it (both read from the OpenAPI document).
import {
  h, api, apiPath, state, alive, has, may, box, kv, num, dur, time, muted, table, filtered, field, onSubmit, action, notice,
  showError, statusBadge, jailLink, ApiError, plural, hash, adminsOnly, VIEWS,
} from './core.js';
import { lineDiff } from './diff.js';

// the same view again, scroll and focus kept; a message given right after waits for it and goes beside the control
const rerender = () => state.rerender();
const lines = (text) => h('pre', { class: 'log' }, text);

VIEWS.config = async (main, args, ctx) => {
  main.append(h('h1', {}, 'Configuration'));
  if (adminsOnly(main, "only admins see and change fail2ban's configuration.")) return;
  if (!has('configJails') && !has('configFiles') && !has('changes')) {
    main.append(muted('This server cannot change fail2ban\'s configuration (no configuration API).'));
    return;
  }
  if (args[0] === 'file' && args.length > 1) return fileEditor(main, args.slice(1).join('/'), ctx);
  const work = [];
  if (has('configJails')) work.push(catalogue(main, ctx));
  if (has('configFiles')) work.push(files(main, ctx));
  if (has('changes')) work.push(changes(main, ctx));
  if (has('serverSettings')) work.push(serverSettings(main, ctx));
  await Promise.all(work);
};

// the guided forms (forms.js): a running jail's options, or activating one with the fields it needs (issue 24)
const formLink = (j) => h('a', { class: 'small', href: hash('configure', j.active ? 'jail' : 'activate', j.name),
  'aria-label': (j.active ? 'Options of ' : 'Activate with a form: ') + j.name }, j.active ? 'Options' : 'Activate…');

async function catalogue(main, ctx) {
  const out = h('div'), activating = h('div');
  main.append(box('Jails fail2ban\'s configuration defines', out), activating);
  const r = await api('configJails');
  if (!alive(ctx)) return;
  const cols = [['Jail', (j) => (j.active ? jailLink(j.name) : h('span', { class: 'mono' }, j.name)), '', (j) => j.name],
    ['State', (j) => (j.active ? h('span', { class: 'badge ok' }, 'active') : h('span', { class: 'badge' }, j.enabled ? 'enabled, not running' : 'inactive')), '', (j) => (j.active ? 0 : 1)],
    ['Filter', (j) => h('span', { class: 'mono' }, j.filter || '—'), 'hide-sm', (j) => j.filter || ''],
    ['Log paths', (j) => h('span', { class: 'mono small' }, (j.logpath || []).join(', ') || '—'), 'hide-sm'],
    ['Defined in', (j) => h('span', { class: 'mono small' }, j.source || '—'), 'hide-sm', (j) => j.source || '']];
  if (may('activate') || may('deactivate')) {
    cols.push(['', (j) => h('span', { class: 'row' }, j.active
      ? (may('deactivate') ? action('Deactivate', async () => {
        if (!confirm('Deactivate ' + j.name + '? Its bans are lifted and it stays off after restarts (activating it again bans again the addresses whose ban time has not run out).')) return;
        await api('deactivate', { params: { jail: j.name } });
        rerender();
        notice(j.name + ' deactivated.');
      }, 'danger small', 'Deactivate ' + j.name) : '')
      : (may('activate') ? action('Activate', async () => {
        await api('activate', { params: { jail: j.name } });
        rerender();
        notice(j.name + ' activated and running.');
      }, 'small', 'Activate ' + j.name) : ''), may('configJail') ? formLink(j) : null)]);
  }
  // running jails first, then enabled ones, then the rest of the catalogue (a stock Debian has ~100)
  const rank = (j) => (j.active ? 0 : j.enabled ? 1 : 2);
  const jails = [...r.jails].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  out.replaceChildren(filtered(jails, cols, ['name', 'filter', 'source'], 'No jail is defined.', 25));
  if (may('activate')) activating.replaceChildren(activateForm(jails.filter((j) => !j.active)));
}

// Activate a jail with its own log paths, backend, ports and max retry (issue 23 item 8): written to bangui's
// override file like any change (validated, applied, revertable); empty fields keep the jail's configuration.
function activateForm(inactive) {
  const jail = h('select', { required: true }, h('option', { value: '' }, 'choose a jail'),
    inactive.map((j) => h('option', { value: j.name }, j.name)));
  const logpath = h('textarea', { rows: 2, spellcheck: 'false', placeholder: '/var/log/example.log' });
  const backend = h('select', {}, h('option', { value: '' }, 'as configured'),
    ['auto', 'polling', 'pyinotify', 'systemd'].map((b) => h('option', { value: b }, b)));
  const port = h('input', { spellcheck: 'false', placeholder: 'ssh or 80,443', pattern: '[A-Za-z0-9,:_ \\-]*', maxlength: 200 });
  const maxretry = h('input', { type: 'number', min: 1, max: 100000, class: 'narrow' });
  const now = h('p', { class: 'muted small' });
  jail.addEventListener('change', () => {
    const j = inactive.find((x) => x.name === jail.value);
    now.textContent = j ? 'Configured: log ' + ((j.logpath || []).join(', ') || '—') + ', backend ' + (j.backend || 'auto') + '.' : '';
  });
  const form = h('form', { class: 'stack' }, field('Jail', jail), now,
    field('Log paths', logpath, 'One absolute path per line; empty keeps the configured ones.'), field('Backend', backend),
    field('Ports', port, 'What its action blocks; empty keeps the configured ones.'), field('Max retry', maxretry),
    h('div', {}, h('button', { type: 'submit' }, 'Activate with these settings')));
  onSubmit(form, async () => {
    const body = {};
    const paths = logpath.value.split('\n').map((s) => s.trim()).filter(Boolean);
    if (paths.length) body.logpath = paths;
    if (backend.value) body.backend = backend.value;
    if (port.value.trim()) body.port = port.value.trim();
    if (maxretry.value) body.maxretry = Number(maxretry.value);
    await api('activate', { params: { jail: jail.value }, body });
    rerender();
    notice(jail.value + ' activated and running' + (Object.keys(body).length ? ' with ' + Object.keys(body).join(', ') : '') + '.');
  });
  return box('Activate a jail with its own settings', form);
}

async function files(main, ctx) {
  const out = h('div');
  const name = h('input', { spellcheck: 'false', required: true, placeholder: 'jail.d/my.local', pattern: '.+\\.local' });
  const form = h('form', { class: 'inline' }, field('New .local file', name), h('button', { type: 'submit' }, 'Create'));
  onSubmit(form, async () => { location.hash = '#/config/file/' + name.value.trim().split('/').map(encodeURIComponent).join('/'); });
  main.append(box('Files', out, may('saveConfigFile') ? form : null));
  const r = await api('configFiles');
  if (!alive(ctx)) return;
  const list = [...r.files].sort((a, b) => (b.editable - a.editable) || a.path.localeCompare(b.path));
  out.replaceChildren(filtered(list, [
    ['File', (f) => h('a', { href: '#/config/file/' + f.path.split('/').map(encodeURIComponent).join('/'), class: 'mono' }, f.path), '', (f) => f.path],
    ['Size', (f) => num(f.size), 'num hide-sm', (f) => f.size], ['Modified', (f) => time(f.modified), 'hide-sm', (f) => f.modified || ''],
    ['', (f) => (f.editable ? h('span', { class: 'badge ok' }, 'editable') : h('span', { class: 'muted small' }, 'read-only'))],
  ], ['path'], 'No files.', 25));
}

// A file: view or edit; Save shows the diff first, then asks the server (which validates with fail2ban's own
// parser); a refusal shows fail2ban's message and marks the line it names.
async function fileEditor(main, path, ctx) {
  let original = '', etag = null, exists = true;
  try { ({ text: original, etag } = await api('configFile', { params: { path }, text: true })); } catch (e) {
    if (e.status !== 404) throw e;
    exists = false;
  }
  if (!alive(ctx)) return;
  const editable = may('saveConfigFile') && (path.endsWith('.local') || !exists);
  const ta = h('textarea', { id: 'config-text', rows: 24, spellcheck: 'false', class: 'editor', readonly: !editable }, original);
  ta.value = original;
  const gutter = h('div', { class: 'problem', hidden: true, role: 'alert' });
  const diffOut = h('div');
  main.append(h('p', {}, h('a', { href: '#/config' }, '← Configuration')), h('h2', { class: 'mono' }, path + (exists ? '' : ' (new)')),
    h('label', { for: 'config-text' }, editable ? 'Contents' : 'Contents (read-only)'), ta, gutter, diffOut);
  if (!editable) return;
  const showDiff = () => {
    const d = lineDiff(original, ta.value);
    diffOut.replaceChildren(d.length ? h('pre', { class: 'diff', 'aria-label': 'Changes' }, d.map(([op, text]) =>
      h('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : 'ctx' }, op + ' ' + text + '\n'))) : muted('No changes.'));
    return d.length;
  };
  const apply = h('button', { type: 'button', hidden: true }, 'Apply');
  const review = h('button', { type: 'button' }, 'Review changes');
  review.addEventListener('click', () => { apply.hidden = !showDiff(); });
  ta.addEventListener('input', () => { apply.hidden = true; });
  apply.addEventListener('click', async () => {
    apply.disabled = true;
    gutter.hidden = true;
    try {
      await api('saveConfigFile', { params: { path }, body: { content: ta.value }, headers: etag ? { 'If-Match': etag } : {} });
      rerender();
      notice('Saved ' + path + ': validated by fail2ban and applied.');
    } catch (e) { showProblem(e, ta, gutter); } finally { apply.disabled = false; }
  });
  const del = exists && may('deleteConfigFile') ? action('Delete file', async () => {
    if (!confirm('Delete ' + path + '? fail2ban is reloaded without it.')) return;
    await api('deleteConfigFile', { params: { path }, headers: etag ? { 'If-Match': etag } : {} });
    notice(path + ' deleted.');
    location.hash = '#/config';
  }, 'danger') : null;
  main.append(h('div', { class: 'row' }, review, apply, del));
}

// fail2ban's own message, and the line it names selected in the editor
function showProblem(e, ta, out) {
  if (!(e instanceof ApiError) || e.status !== 422) throw e;
  const d = e.details || {};
  const errors = [].concat(d.errors || []).map(String);
  const text = [e.message, ...errors.filter((x) => !e.message.includes(x))].join('\n');
  // fail2ban's parser says "[line  3]: ..." or "line 3"; the file named must be this one when it names one
  const m = /line\s+(\d+)/i.exec(text);
  const line = Number(d.line || (m && m[1])) || null;
  out.replaceChildren(...[h('strong', {}, e.code === 'apply_failed' ? 'fail2ban could not apply this; the previous files were restored.' : 'fail2ban refused this file; nothing was changed.'),
    line ? h('p', {}, 'At line ' + line + ':') : null,
    h('pre', {}, text + (d.log_tail ? '\n' + [].concat(d.log_tail).join('\n') : ''))].filter(Boolean));
  out.hidden = false;
  if (line) {
    const starts = ta.value.split('\n').slice(0, line - 1).reduce((a, l) => a + l.length + 1, 0);
    ta.focus();
    ta.setSelectionRange(starts, starts + (ta.value.split('\n')[line - 1] || '').length);
  }
}

async function changes(main, ctx) {
  const out = h('div');
  main.append(box('Applied changes', out));
  const r = await api('changes');
  if (!alive(ctx)) return;
  const items = r.changes || r.items || [];
  out.replaceChildren(table(items, [
    ['When', (c) => time(c.time || c.at)], ['Who', (c) => c.actor || '—'],
    ['What', (c) => h('span', {}, h('span', { class: 'mono' }, c.action || 'change'), c.target ? ' ' + c.target : '')],
    ['Files', (c) => h('span', { class: 'mono small' }, (c.files || []).join(', ') || '—'), 'hide-sm'],
    ['Diff', (c) => (c.diff ? h('details', {}, h('summary', {}, 'show'), h('pre', { class: 'diff' }, c.diff)) : '—'), 'hide-sm'],
    ['', (c) => (may('revert') && !c.reverted ? action('Revert', async () => {
      if (!confirm('Revert this change? It is validated and applied like any change.')) return;
      await api('revert', { params: { id: c.id } });
      rerender();
      notice('Change reverted.');
    }, 'secondary small', 'Revert change ' + c.id) : c.reverted ? h('span', { class: 'muted small' }, 'reverted') : '')],
  ], 'No change made through bangui yet.'));
}

async function serverSettings(main, ctx) {
  const out = h('div');
  main.append(box('fail2ban server', out));
  const s = await api('serverSettings');
  if (!alive(ctx)) return;
  out.replaceChildren(kv('Log level', s.loglevel, 'Log target', h('span', { class: 'mono' }, s.logtarget), 'Database', h('span', { class: 'mono' }, s.dbfile),
    'Forget bans after', dur(s.dbpurgeage), 'Log lines kept per ban', num(s.dbmaxmatches)));
  if (may('changeServerSettings')) {
    const level = h('select', {}, ['CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'].map((l) => h('option', { selected: l === s.loglevel }, l)));
    const purge = h('input', { type: 'number', min: 0, value: s.dbpurgeage, style: 'width:9em' });
    const matches = h('input', { type: 'number', min: 0, value: s.dbmaxmatches, style: 'width:6em' });
    const form = h('form', { class: 'inline' }, field('Log level', level), field('Forget after (s)', purge), field('Lines per ban', matches),
      h('button', { type: 'submit' }, 'Save'));
    onSubmit(form, async () => {
      const r = await api('changeServerSettings', { body: { loglevel: level.value, dbpurgeage: Number(purge.value), dbmaxmatches: Number(matches.value) } });
      rerender();
      notice('Saved.' + (r.warnings && r.warnings.length ? ' Note: ' + r.warnings.join(' ') : ''));
    });
    out.append(h('details', { class: 'edit' }, h('summary', {}, 'Change'), form));
  }
  if (may('serverReload')) {
    out.append(h('p', {}, action('Reload fail2ban', async () => {
      const r = await api('serverReload');
      notice('fail2ban reloaded: ' + (r.jails || []).length + ' jails running.');
    }, 'secondary'), ' ', may('serverRestart') ? action('Restart fail2ban', async () => {
      if (!confirm('Restart fail2ban? It stops every jail and starts them again; bans whose time has not run out are restored.')) return;
      const r = await api('serverRestart');
      notice('fail2ban restarted' + (r && r.jails ? ': ' + r.jails.length + ' jails running.' : '.'));
    }, 'danger') : null));
  }
}

// --- Tools: filter tester and fail2ban's log ---
VIEWS.tools = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Tools'));
  if (may('filterTest', 'operator')) main.append(filterTester());
  if (has('logs')) await logViewer(main, ctx);
};

function filterTester() {
  const filter = h('input', { spellcheck: 'false', placeholder: 'name in filter.d', list: 'jail-filters' });
  const filters = h('datalist', { id: 'jail-filters' });
  const regex = h('textarea', { rows: 2, spellcheck: 'false', placeholder: 'or your own failregex, one per line (<HOST> marks the address)' });
  const ignore = h('textarea', { rows: 1, spellcheck: 'false', placeholder: 'lines these match are not failures (with a fail regex)' });
  const text = h('textarea', { rows: 6, spellcheck: 'false', placeholder: 'log lines to test' });
  const logpath = h('input', { spellcheck: 'false', placeholder: '/var/log/auth.log', list: 'jail-logs' });
  const logs = h('datalist', { id: 'jail-logs' });
  // the jails' own filters and log files are offered (any file under BANGUI_LOG_DIRS may be typed)
  api('jails').then((r) => Promise.all(r.jails.map((j) => api('jail', { params: { jail: j.name } }).catch(() => null)))).then((details) => {
    const seen = new Set();
    for (const j of details.filter(Boolean)) {
      if (j.filter && !seen.has('f:' + j.filter)) { seen.add('f:' + j.filter); filters.append(h('option', { value: j.filter }, j.name)); }
      for (const p of j.logpaths || []) if (!seen.has(p)) { seen.add(p); logs.append(h('option', { value: p }, j.name)); }
    }
  }, () => {});
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'stack wide' }, field('Filter', filter, 'A filter name from filter.d, or regexes below.'), field('Fail regex', regex),
    field('Ignore regex', ignore), field('Log lines', text), field('…or a log file a jail watches', logpath), h('div', {}, h('button', { type: 'submit' }, 'Test')), filters, logs);
  onSubmit(form, async () => {
    const body = {};
    const regexes = (el) => el.value.split('\n').filter((l) => l.trim());
    if (regex.value.trim()) {
      body.failregex = regexes(regex);
      if (ignore.value.trim()) body.ignoreregex = regexes(ignore);
    } else body.filter = filter.value.trim();
    if (logpath.value.trim()) body.logpath = logpath.value.trim(); else body.lines = text.value.split('\n').filter((l) => l.trim());
    const r = await api('filterTest', { body });
    const ignored = r.ignored_sample || [];
    out.replaceChildren(...[h('p', { class: 'row' }, h('strong', {}, num(r.matched) + ' matched'), h('span', {}, num(r.ignored) + ' ignored'),
      h('span', {}, num(r.missed) + ' missed'), h('span', {}, 'of ' + plural(r.lines_checked, 'line')), h('span', { class: 'muted small' }, r.elapsed_ms + ' ms')),
    body.lines && !r.matches_truncated ? verdicts(body.lines, r)
      : table(r.matches || [], [['Address', (m) => h('span', { class: 'mono' }, m.ip)], ['Time', (m) => time(m.time)], ['Line', (m) => h('span', { class: 'mono small' }, m.line)]], 'No line matched.'),
    !body.lines && ignored.length ? h('details', {}, h('summary', {}, 'Lines an ignoreregex let off'), lines(ignored.join('\n'))) : null,
    !body.lines && r.missed_sample && r.missed_sample.length ? h('details', {}, h('summary', {}, 'Lines that did not match'), lines(r.missed_sample.join('\n'))) : null].filter(Boolean));
  });
  return box('Filter tester', form, out);
}

// The lines typed in, each marked (issue 23 item 8): a failure (with the address fail2ban would ban), matched but
// let off by an ignoreregex, or not a failure at all.
function verdicts(input, r) {
  const hits = new Map((r.matches || []).map((m) => [m.line, m]));
  const ignored = new Set(r.ignored_sample || []);
  const rows = input.map((line, i) => ({ i, line, m: hits.get(line), ignored: ignored.has(line) }));
  const mark = (x) => (x.m ? h('span', { class: 'badge bad' }, 'failure') : x.ignored ? h('span', { class: 'badge warn' }, 'ignored')
    : h('span', { class: 'badge' }, 'not a failure'));
  return table(rows, [['Line', (x) => h('span', { class: 'mono small' }, x.line)], ['Verdict', mark, 'nowrap'],
    ['Address', (x) => (x.m ? h('span', { class: 'mono' }, x.m.ip) : x.ignored ? 'let off by an ignoreregex' : '—')]], 'No lines.');
}

async function logViewer(main, ctx) {
  const grep = h('input', { type: 'search', spellcheck: 'false' });
  const level = h('select', {}, h('option', { value: '' }, 'any level'), ['ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'].map((l) => h('option', {}, l)));
  const follow = h('input', { type: 'checkbox', checked: true });
  // how far back to read (issue 23 item 8): the last N lines of fail2ban's log, then following from there
  const count = h('select', {}, [50, 200, 500, 1000, 2000].map((n) => h('option', { value: n, selected: n === 200 }, n + ' lines')));
  const out = h('div'), file = h('p', { class: 'muted small' });
  const form = h('form', { class: 'inline', role: 'search' }, field('Contains', grep), field('Level', level), field('Show the last', count),
    field('Follow', follow));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load().catch(showError); });
  form.addEventListener('change', () => load().catch(showError));
  main.append(box('fail2ban log', form, file, out));
  const MAX_LINES = 2000; // the oldest go when following for long
  const line = (l) => h('span', { class: 'lvl-' + String(l.level || '').toLowerCase() },
    (l.time ? String(l.time).replace('T', ' ').replace(/Z$/, ' UTC') + ' ' : '') + (l.level ? l.level + ' ' : '') + l.text + '\n');
  let stream = null;
  const stop = () => { if (stream) { stream.close(); stream = null; } };
  ctx.cleanup = stop; // leaving the view closes the stream (the server caps streams per worker)
  const load = async () => {
    stop();
    const query = { lines: count.value, grep: grep.value, level: level.value };
    const r = await api('logs', { query });
    if (!alive(ctx)) return;
    file.textContent = r.file + ': ' + plural((r.lines || []).length, 'line') + (r.truncated ? ' (the last of more)' : '') + (follow.checked ? '; following' : '');
    const pre = h('pre', { class: 'log', tabindex: 0, 'aria-label': 'Log lines' }, (r.lines || []).map(line));
    out.replaceChildren(pre);
    pre.scrollTop = pre.scrollHeight;
    if (!follow.checked) return;
    if (has('logStream')) {
      // live: server-sent events from the end of the file on (polling below when the server has no stream)
      stream = new EventSource(apiPath('logStream', {}, { grep: query.grep, level: query.level }));
      stream.onmessage = (ev) => {
        if (!alive(ctx)) { stop(); return; }
        let l;
        try { l = JSON.parse(ev.data); } catch (_) { return; }
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(line(l));
        while (pre.childNodes.length > MAX_LINES) pre.firstChild.remove();
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      };
      stream.addEventListener('end', stop);
    }
  };
  ctx.refresh = () => (follow.checked && !has('logStream') ? load() : Promise.resolve()); // polled every 5 s while visible
  await load();
}

// --- Audit (admin) ---
VIEWS.audit = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Audit log'));
  if (adminsOnly(main, 'only admins read the audit log.')) return;
  if (!has('audit')) { main.append(muted('This server keeps no audit log yet.')); return; }
  const f = { since: h('input', { type: 'datetime-local', step: 1 }), until: h('input', { type: 'datetime-local', step: 1 }),
    actor: h('input', { size: 12, spellcheck: 'false' }), action: h('input', { size: 14, spellcheck: 'false', placeholder: 'jail. or config.', list: 'audit-actions' }),
    target: h('input', { size: 14, spellcheck: 'false' }),
    outcome: h('select', {}, h('option', { value: '' }, 'any'), ['ok', 'denied', 'failed'].map((o) => h('option', {}, o))) };
  const csv = h('a', { class: 'button secondary', download: 'bangui-audit.csv' }, 'Download CSV');
  const iso = (v) => { const d = v ? new Date(v) : null; return d && !isNaN(d) ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : ''; };
  const filters = () => ({ since: iso(f.since.value), until: iso(f.until.value), actor: f.actor.value.trim(), action: f.action.value.trim(),
    target: f.target.value.trim(), outcome: f.outcome.value });
  // the action box takes a prefix; the list offers the families and the common actions
  const known = h('datalist', { id: 'audit-actions' }, ['auth.', 'jail.', 'ban.', 'config.', 'server.', 'user.', 'token.', 'blocklist.', 'job.', 'setup.',
    'auth.login', 'jail.ban', 'jail.unban', 'jail.unban_many', 'jail.unban_all', 'ban.unban_everywhere'].map((a) => h('option', { value: a })));
  const form = h('form', { class: 'inline', role: 'search' }, field('Since', f.since), field('Until', f.until), field('Who', f.actor),
    field('Action', f.action), field('Target', f.target), field('Outcome', f.outcome), h('button', { type: 'submit' }, 'Apply'), csv, known);
  const out = h('div'), more = h('div'), verify = h('div');
  const rows = [];
  let q0 = {};
  const load = async (cursor) => {
    if (!cursor) q0 = { ...filters(), limit: 200 };
    const r = await api('audit', { query: { ...q0, cursor } });
    if (!alive(ctx)) return;
    if (!cursor) rows.length = 0;
    rows.push(...(r.items || []));
    out.replaceChildren(table(rows, [['When', (a) => time(a.at), '', (a) => a.at], ['Who', (a) => a.actor + (a.role ? ' (' + a.role + ')' : ''), '', (a) => a.actor],
      ['Via', (a) => a.via, 'hide-sm'], ['From', (a) => h('span', { class: 'mono small' }, a.source_ip || '—'), 'hide-sm'],
      ['Action', (a) => h('span', { class: 'mono' }, a.action), '', (a) => a.action], ['Target', (a) => a.target || '—', '', (a) => a.target || ''],
      ['Outcome', (a) => statusBadge(a.outcome), '', (a) => a.outcome], ['Status', (a) => num(a.status), 'num hide-sm'],
      ['Details', (a) => (a.details && Object.keys(a.details).length ? h('details', {}, h('summary', {}, 'show'), h('pre', {}, JSON.stringify(a.details, null, 1))) : '—'), 'hide-sm']],
    'No entry matches.'));
    more.replaceChildren(r.next_cursor ? action('Load more', () => load(r.next_cursor), 'secondary') : '');
  };
  const updateCsv = () => { csv.href = apiPath('audit', {}, { ...filters(), format: 'csv' }); };
  form.addEventListener('input', updateCsv);
  updateCsv();
  onSubmit(form, () => load());
  if (has('auditVerify')) {
    verify.append(action('Verify the chain', async () => {
      const r = await api('auditVerify');
      verify.replaceChildren(r.ok ? h('p', { class: 'ok' }, 'The chain verifies: ' + plural(r.checked, 'entry') + ' checked, none altered or removed.')
        : h('p', { class: 'bad' }, 'The chain is broken at entry ' + (r.first_bad_id ?? '?') + (r.reason ? ': ' + r.reason : '') + '.'));
    }, 'secondary'));
  }
  main.append(box('Entries', form, out, more), box('Integrity', verify));
  await load();
};
