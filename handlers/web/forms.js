// Guided configuration (issue 24): forms instead of raw .local text.
//   #/configure/jail/NAME       every option of a jail: fail2ban's meaning and default, the effective value and the
//                               file it comes from; saved into bangui's override (PATCH /config/jails/NAME)
//   #/configure/activate/NAME   activate a catalogue jail, asking for what the advisor could not fill (the log)
//   #/configure/filter/NAME     failregex / ignoreregex / datepattern of filter.d/NAME.local, tested live against
//                               a jail's log with the filter tester before it can be saved
import {
  h, api, alive, may, box, muted, field, onSubmit, notice, showError, actingOn, num, plural, dur, state, link, hash, jailLink, VIEWS,
} from './core.js';

// fail2ban 1.0.2's options: its meaning (jail.conf's comments, man jail.conf) and its default when no file sets it
const OPTIONS = [
  { key: 'enabled', label: 'Enabled', kind: 'bool', def: 'false', help: 'Whether fail2ban runs this jail.' },
  { key: 'filter', label: 'Filter', help: 'The filter in filter.d whose failregex lines find failures (name, or name[mode=...]).', def: 'the jail\'s own name' },
  { key: 'logpath', label: 'Log paths', kind: 'lines', help: 'Log files the jail reads, one per line (globs allowed). Not used with backend systemd.', def: 'per jail (paths-debian.conf)' },
  { key: 'backend', label: 'Backend', kind: 'choice', choices: ['auto', 'pyinotify', 'polling', 'systemd'], help: 'How the logs are read: files (auto, pyinotify, polling) or the systemd journal.', def: 'auto' },
  { key: 'port', label: 'Port', help: 'Ports the ban blocks: names or numbers, comma-separated, a:b for a range.', def: '0:65535' },
  { key: 'protocol', label: 'Protocol', kind: 'choice', choices: ['tcp', 'udp', 'all'], help: 'Protocol the ban blocks.', def: 'tcp' },
  { key: 'maxretry', label: 'Max retry', kind: 'int', min: 1, help: 'Failures within the find time that ban an address.', def: '5' },
  { key: 'findtime', label: 'Find time (s)', kind: 'int', min: 1, help: 'The window in which max retry failures must happen.', def: '600 (10m)' },
  { key: 'bantime', label: 'Ban time (s)', kind: 'int', min: -1, help: 'How long a ban lasts; -1 bans for ever.', def: '600 (10m)' },
  { key: 'bantime.increment', label: 'Longer bans for repeat offenders', kind: 'bool', help: 'Each new ban of an address lasts longer (bantime × factor × 1, 2, 4, …; needs the database).', def: 'false' },
  { key: 'bantime.factor', label: 'Increment factor', kind: 'num', min: 0.01, help: 'The multiplier of the growth formula.', def: '1' },
  { key: 'bantime.maxtime', label: 'Longest ban (s)', kind: 'int', min: 1, help: 'An increased ban never lasts longer than this.', def: 'no limit' },
  { key: 'ignoreip', label: 'Ignore addresses', kind: 'words', help: 'Addresses, networks or host names never banned (space-separated): your own belong here.', def: '127.0.0.1/8 ::1' },
  { key: 'banaction', label: 'Ban action', help: 'The action.d file that bans (e.g. nftables-multiport, iptables-multiport).', def: 'iptables-multiport (Debian\'s jail.conf)' },
  { key: 'action', label: 'Actions', kind: 'lines', help: 'The full action lines; by default the ban action with port, protocol and chain (%(action_)s).', def: '%(action_)s' },
];
const FIELD_NAME = (key) => key.replace('.', '_'); // API body field of an option (bantime.increment -> bantime_increment)

// The effective value of an option, as fail2ban's readers computed it (the catalogue), in the form's text.
function effective(j, key) {
  if (key === 'enabled') return j.enabled ? 'true' : 'false';
  if (key === 'filter') return j.filter || '';
  if (key === 'backend') return j.backend || '';
  if (key === 'logpath') return (j.logpath || []).join('\n');
  const v = (j.settings || {})[key];
  if (v != null) return String(v);
  // fail2ban's readers keep port, protocol and banaction only inside the action line: the file's own text
  const o = (j.options || {})[key];
  return o && !/%\(|</.test(o.raw) ? o.raw : '';
}
// "bangui's override", "jail.d/x.local [JAIL]", "jail.conf [DEFAULT]", or fail2ban's built-in default
function origin(j, key) {
  const o = (j.options || {})[key];
  if (!o) return "fail2ban's built-in default";
  if (o.override) return "bangui's override (" + o.file + ')';
  return o.file + ' [' + o.section + ']';
}
// the value a file gives below bangui's override: what applies again when bangui's is dropped
function inherited(j, key) {
  const chain = ((j.options || {})[key] || {}).chain || [];
  const rest = chain.filter((s) => s.file !== j.override_file);
  const own = rest.filter((s) => s.section !== 'DEFAULT');
  const w = (own.length ? own : rest).slice(-1)[0];
  return w ? w.raw + ' (' + w.file + ' [' + w.section + '])' : "fail2ban's built-in default";
}

function input(opt, value) {
  if (opt.kind === 'bool') return h('input', { type: 'checkbox', checked: String(value).toLowerCase() === 'true' });
  if (opt.kind === 'choice') {
    const base = value.split('[')[0];
    const list = opt.choices.includes(base) ? opt.choices : [value, ...opt.choices]; // '' : not set anywhere
    return h('select', {}, list.map((c) => h('option', { value: c, selected: c === value || c === base }, c)));
  }
  if (opt.kind === 'lines') return h('textarea', { rows: Math.min(6, Math.max(2, value.split('\n').length)), spellcheck: 'false' }, value);
  if (opt.kind === 'int' || opt.kind === 'num') {
    return h('input', { type: 'number', min: opt.min, step: opt.kind === 'num' ? 'any' : 1, value, class: 'short' });
  }
  return h('input', { spellcheck: 'false', value, class: 'long' });
}
// the form's text, normalised as the effective value is for the "changed?" comparison (lines trimmed, blanks dropped)
const norm = (opt, text) => (opt.kind === 'lines' ? text.split('\n').map((l) => l.trim()).filter(Boolean).join('\n')
  : opt.kind === 'words' ? text.split(/\s+/).filter(Boolean).join(' ') : String(text).trim());
const read = (opt, el) => (opt.kind === 'bool' ? (el.checked ? 'true' : 'false') : norm(opt, el.value));
// the form's text as the API's value (lists for logpath/action/ignoreip, numbers for counts and times)
function apiValue(opt, text) {
  if (opt.kind === 'bool') return text === 'true';
  if (opt.kind === 'int') return parseInt(text, 10);
  if (opt.kind === 'num') return Number(text);
  if (opt.kind === 'lines') return text.split('\n').map((l) => l.trim()).filter(Boolean);
  if (opt.kind === 'words') return text.split(/\s+/).filter(Boolean);
  return text;
}

VIEWS.configure = async (main, args, ctx) => {
  const [what, name] = args;
  if (!name || !may('configJail')) {
    main.append(h('h1', {}, 'Configuration'), muted('This form needs the admin role and a jail or filter name.'));
    return;
  }
  if (what === 'jail') return jailForm(main, name, ctx);
  if (what === 'activate') return activateForm(main, name, ctx);
  if (what === 'filter') return filterForm(main, name, ctx);
  main.append(h('h1', {}, 'Not found'));
};

// ---------- the jail form ----------
async function jailForm(main, name, ctx) {
  const j = await api('configJail', { params: { jail: name } });
  if (!alive(ctx)) return;
  main.append(h('p', {}, link('← Configuration', 'config')), h('h1', {}, 'Jail ' + name),
    h('p', { class: 'muted' }, (j.active ? 'Running. ' : j.enabled ? 'Enabled but not running. ' : 'Not enabled. ') +
      'Changes are written to ' + j.override_file + ' (bangui\'s override, read after every other file), validated by fail2ban, applied and verified; each can be reverted under Configuration.'),
    j.error ? h('p', { class: 'bad' }, 'fail2ban: ' + j.error) : '');
  const rows = [];
  const grid = h('div', { class: 'optform' });
  for (const opt of OPTIONS) {
    const value = effective(j, opt.key);
    const el = input(opt, value);
    const o = (j.options || {})[opt.key];
    const reset = o && o.override && opt.key !== 'enabled'
      ? h('input', { type: 'checkbox', 'aria-label': 'Drop bangui\'s ' + opt.key + ' (use ' + inherited(j, opt.key) + ')' }) : null;
    // a boolean no file sets reads as false, like an unticked box: no change unless the user ticks it
    rows.push({ opt, el, value: opt.kind === 'bool' ? (String(value).toLowerCase() === 'true' ? 'true' : 'false') : norm(opt, value), reset });
    grid.append(h('div', { class: 'opt', 'data-key': opt.key },
      field(opt.label, el),
      h('div', { class: 'small' },
        h('div', {}, h('span', { class: 'mono' }, opt.key), ': ', opt.help),
        h('div', { class: 'muted' }, "fail2ban's default: ", h('span', { class: 'mono' }, opt.def)),
        h('div', { class: 'origin' }, 'Now: ', h('span', { class: 'mono' }, value === '' ? '(none)' : value.replace(/\n/g, ', ')),
          ' from ', h('strong', {}, origin(j, opt.key))),
        reset ? h('label', { class: 'muted' }, reset, ' use the inherited value: ' + inherited(j, opt.key)) : null)));
  }
  const form = h('form', { class: 'stack wide' }, grid, h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Save jail'),
    h('a', { href: hash('configure', 'filter', j.filter || name) + '?jail=' + encodeURIComponent(name) }, 'Edit its filter')));
  onSubmit(form, async () => {
    const body = {};
    let enable = null;
    for (const { opt, el, value, reset } of rows) {
      const now = read(opt, el);
      if (opt.key === 'enabled') { if (now !== value) enable = now === 'true'; continue; }
      if (reset && reset.checked) { body[FIELD_NAME(opt.key)] = null; continue; }
      if (now === value) continue;
      if (now === '' && opt.kind !== 'words') throw new Error(opt.label + ': give a value (or tick "use the inherited value").');
      body[FIELD_NAME(opt.key)] = apiValue(opt, now);
    }
    if (enable === false) {
      if (!confirm('Disable ' + name + '? Its bans are lifted.')) return;
      if (Object.keys(body).length) await api('setJailOptions', { params: { jail: name }, body });
      await api('deactivate', { params: { jail: name } });
    } else if (enable === true || Object.keys(body).length) {
      if (enable) body.activate = true;
      await api('setJailOptions', { params: { jail: name }, body });
    } else {
      notice('Nothing changed.');
      return;
    }
    const what = Object.keys(body).filter((k) => k !== 'activate').map((k) => k.replace('_', '.'));
    state.rerender(); // the message waits for the redraw and goes beside the form's successor
    notice('Saved ' + name + (what.length ? ': ' + what.join(', ') : '') + (enable === true ? '; activated and running' : enable === false ? '; disabled' : '') + '.');
  });
  main.append(box('Options', form));
}

// ---------- activating a catalogue jail: the fields the advisor could not fill ----------
async function activateForm(main, name, ctx) {
  const finding = ctx.query.finding || '';
  const [j, adv] = await Promise.all([api('configJail', { params: { jail: name } }),
    may('advisor') ? api('advisor').catch(() => null) : null]);
  if (!alive(ctx)) return;
  const f = adv && (adv.findings || []).find((x) => x.id === finding || (!finding && x.jail === name && x.id.startsWith('service-without-jail')));
  const fixed = (f && f.fix && f.fix.set) || {};
  // candidates: the logs the advisor saw for the service, the jail's own configured paths
  const seen = (f && f.evidence && f.evidence.logs) || [];
  const candidates = [...new Set([...seen, ...(fixed.logpath ? fixed.logpath.split('\n') : []), ...(j.logpath || [])])];
  const several = seen.length > 1 || (!seen.length && candidates.length > 1);
  main.append(h('p', {}, link('← Configuration', 'config')), h('h1', {}, 'Activate ' + name),
    f ? h('p', {}, 'The advisor: ', h('em', {}, f.detail)) : '',
    h('p', { class: 'muted' }, several ? 'Several logs fit: choose the ones this jail should read.'
      : candidates.length ? 'Check the log this jail will read.' : 'The advisor found no log for it: give its log path, or use the systemd journal.'));
  const boxes = candidates.map((p) => ({ p, el: h('input', { type: 'checkbox', checked: !several && (seen.includes(p) || candidates.length === 1) }) }));
  const other = h('textarea', { rows: 2, spellcheck: 'false', placeholder: '/var/log/…' });
  const backend = input(OPTIONS.find((o) => o.key === 'backend'), fixed.backend || (j.backend || 'auto').split('[')[0]);
  const port = h('input', { spellcheck: 'false', value: fixed.port || effective(j, 'port') });
  const form = h('form', { class: 'stack wide' },
    candidates.length ? h('fieldset', {}, h('legend', {}, 'Log files'), boxes.map(({ p, el }) => h('label', { class: 'mono small check' }, el, ' ' + p))) : null,
    field('Other log paths (one per line)', other), field('Backend', backend, 'systemd: the journal (no log file needed).'),
    field('Port', port, 'Ports the ban blocks.'), h('div', {}, h('button', { type: 'submit' }, 'Activate ' + name)));
  onSubmit(form, async () => {
    const paths = [...boxes.filter((x) => x.el.checked).map((x) => x.p), ...other.value.split('\n').map((l) => l.trim()).filter(Boolean)];
    const body = { activate: true, backend: backend.value };
    if (!backend.value.startsWith('systemd')) {
      if (!paths.length) throw new Error('Choose or give at least one log file (or the systemd backend).');
      body.logpath = paths;
    }
    if (port.value.trim() && port.value.trim() !== effective(j, 'port')) body.port = port.value.trim();
    await api('setJailOptions', { params: { jail: name }, body });
    notice(name + ' activated and running' + (body.logpath ? ' on ' + body.logpath.join(', ') : ' on the journal') + '.');
  });
  main.append(box('What the jail needs', form));
}

// ---------- the filter form ----------
// A minimal INI reader/writer for one section's keys (continuation lines start with white space), enough to
// edit failregex/ignoreregex/datepattern of a .local and keep everything else in it as it is.
function iniRead(text, section) {
  const out = {};
  let cur = null, key = null;
  for (const line of (text || '').split('\n')) {
    const sec = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (sec) { cur = sec[1]; key = null; continue; }
    if (cur !== section || /^\s*[#;]/.test(line)) continue;
    const kv = /^([^\s=:][^=:]*?)\s*[=:]\s?(.*)$/.exec(line);
    if (kv) { key = kv[1].trim(); out[key] = kv[2].trim(); } else if (key && /^\s+\S/.test(line)) out[key] += '\n' + line.trim();
    else key = null;
  }
  return out;
}
export function iniSet(text, section, values) {
  const lines = (text || '').split('\n');
  const out = [];
  let cur = null, skipping = false, found = false;
  const emit = () => {
    for (const [k, v] of Object.entries(values)) {
      if (v == null || v === '') continue;
      const parts = String(v).split('\n');
      out.push(k + ' = ' + parts[0], ...parts.slice(1).map((p) => ' '.repeat(k.length + 3) + p));
    }
  };
  for (const line of lines) {
    const sec = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (sec) {
      if (cur === section) emit();
      cur = sec[1]; skipping = false;
      if (cur === section) found = true;
      out.push(line);
      continue;
    }
    if (cur === section) {
      const kv = /^([^\s=:#;][^=:]*?)\s*[=:]/.exec(line);
      if (kv) { skipping = kv[1].trim() in values; if (skipping) continue; } else if (skipping && /^\s+\S/.test(line)) continue;
      else skipping = false;
    }
    out.push(line);
  }
  while (out.length && out[out.length - 1] === '') out.pop();
  if (cur === section) emit();
  if (!found) { if (out.length) out.push(''); out.push('[' + section + ']'); emit(); }
  return out.join('\n') + '\n';
}

async function filterForm(main, name, ctx) {
  const rel = 'filter.d/' + name.split('[')[0] + '.local';
  const jailName = ctx.query.jail || '';
  const [local, conf, jails] = await Promise.all([
    api('configFile', { params: { path: rel }, text: true }).catch((e) => { if (e.status === 404) return null; throw e; }),
    api('configFile', { params: { path: 'filter.d/' + name.split('[')[0] + '.conf' }, text: true }).catch(() => null),
    api('configJails').catch(() => ({ jails: [] }))]);
  if (!alive(ctx)) return;
  const def = iniRead(local ? local.text : '', 'Definition');
  const confDef = iniRead(conf ? conf.text : '', 'Definition');
  // the jail whose log the test reads: the one named in the address, else the first that uses this filter
  const users = jails.jails.filter((x) => x.filter === name.split('[')[0]);
  const jail = jails.jails.find((x) => x.name === jailName) || users[0] || null;
  const logs = jail ? jail.logpath || [] : [];
  main.append(h('p', {}, link('← Configuration', 'config')), h('h1', {}, 'Filter ' + name),
    h('p', { class: 'muted' }, 'Edits ' + rel + (local ? '' : ' (new)') + '. Its keys replace those of the .conf; test against the log before saving.'),
    conf && confDef.failregex ? h('details', {}, h('summary', {}, 'The .conf\'s failregex (for reference)'), h('pre', { class: 'log' }, confDef.failregex)) : '');
  const fail = h('textarea', { rows: 5, spellcheck: 'false', placeholder: '^Login failed for .* from <HOST>$' }, def.failregex || '');
  const ignore = h('textarea', { rows: 2, spellcheck: 'false' }, def.ignoreregex || '');
  const date = h('input', { spellcheck: 'false', size: 40, value: def.datepattern || '' });
  const logSel = h('select', {}, logs.map((p) => h('option', { value: p }, p)), h('option', { value: '' }, 'lines pasted below'));
  const pasted = h('textarea', { rows: 4, spellcheck: 'false', placeholder: 'log lines (when the jail reads the journal or no file fits)' });
  const out = h('div', { class: 'filter-result', 'aria-live': 'polite' });
  const save = h('button', { type: 'button', disabled: true }, 'Save filter');
  let tested = null; // the text that passed the last test: Save only for that text
  const current = () => JSON.stringify([fail.value, ignore.value, date.value]);
  for (const el of [fail, ignore, date]) {
    el.addEventListener('input', () => {
      save.disabled = tested !== current();
      if (save.disabled && tested) out.replaceChildren(muted('Changed since the last test: test again before saving.'));
    });
  }
  const lines = (el) => el.value.split('\n').map((l) => l.trim()).filter(Boolean);
  const form = h('form', { class: 'stack wide' }, field('Fail regex (one per line; <HOST> marks the address)', fail),
    field('Ignore regex (one per line)', ignore), field('Date pattern', date, 'As in the file (%% for %, e.g. ^%%Y-%%m-%%d %%H:%%M:%%S); empty: fail2ban finds the date itself.'),
    jail ? field('Test against ' + jail.name + '\'s log', logSel) : null, field('Log lines to test', pasted),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Test'), save));
  onSubmit(form, async () => {
    const body = { failregex: lines(fail), ignoreregex: lines(ignore) };
    if (!body.failregex.length) throw new Error('Give at least one fail regex.');
    // the file's text escapes % as %% (fail2ban's interpolation); the tester takes the pattern itself
    if (date.value.trim()) body.datepattern = date.value.trim().replace(/%%/g, '%');
    if (logSel.value && !pasted.value.trim()) body.logpath = logSel.value; else body.lines = pasted.value.split('\n').filter((l) => l.trim());
    if (!body.logpath && !body.lines.length) throw new Error('Choose a log or paste lines to test against.');
    const snapshot = current();
    const r = await api('filterTest', { body });
    tested = snapshot;
    save.disabled = tested !== current();
    out.replaceChildren(...testResult(r).filter(Boolean));
  });
  save.addEventListener('click', async () => {
    save.disabled = true;
    actingOn(save); // messages (fail2ban's refusal) beside the button
    try {
      const text = iniSet(local ? local.text : '# Written by bangui\'s filter form\n', 'Definition',
        { failregex: lines(fail).join('\n'), ignoreregex: lines(ignore).join('\n') || null, datepattern: date.value.trim() || null });
      await api('saveConfigFile', { params: { path: rel }, body: { content: text }, headers: local && local.etag ? { 'If-Match': local.etag } : {} });
      state.rerender();
      notice('Saved ' + rel + ': validated by fail2ban and applied.');
    } catch (e) { save.disabled = false; showError(e); }
  });
  main.append(box('Regexes', form, out), users.length ? h('p', { class: 'muted small' }, 'Used by: ', users.map((u) => [jailLink(u.name), ' '])) : '');
}

// The tester's answer: counts, and the lines with the matched address highlighted (missed lines plain).
function testResult(r) {
  const hit = (m) => {
    const line = String(m.line), ip = m.ip ? String(m.ip) : '';
    const at = ip ? line.indexOf(ip) : -1;
    return h('div', { class: 'hit' }, at < 0 ? h('mark', {}, line) : [line.slice(0, at), h('mark', {}, ip), line.slice(at + ip.length)]);
  };
  return [h('p', { class: 'row' }, h('strong', {}, num(r.matched) + ' matched'), h('span', {}, num(r.ignored) + ' ignored'),
    h('span', {}, num(r.missed) + ' missed'), h('span', {}, 'of ' + plural(r.lines_checked, 'line')), h('span', { class: 'muted small' }, dur(r.elapsed_ms / 1000))),
  r.matches && r.matches.length ? h('div', { class: 'log matched', 'aria-label': 'Matched lines' }, r.matches.map(hit)) : muted('No line matched.'),
  r.missed_sample && r.missed_sample.length ? h('details', {}, h('summary', {}, 'Lines that did not match'),
    h('div', { class: 'log' }, r.missed_sample.map((l) => h('div', {}, l)))) : null];
}
