// The advisor (issue 24): what in fail2ban's configuration does not fit this host, grouped by severity, with the
// evidence and, for admins, the button that applies the fix (the result shows beside it). Viewers read the
// findings without fixes (the API leaves them out). The dashboard gets a count by severity.
import {
  h, api, alive, may, can, box, muted, time, link, jailLink, action, hash, state, VIEWS,
} from './core.js';

const SEVERITIES = [['critical', 'Critical', 'bad'], ['warning', 'Warnings', 'warn'], ['info', 'Information', '']];

function evidence(ev) {
  const keys = Object.keys(ev || {}).filter((k) => ev[k] != null && !(Array.isArray(ev[k]) && !ev[k].length));
  if (!keys.length) return null;
  const dl = h('dl', { class: 'kv small' });
  for (const k of keys) {
    const v = ev[k];
    dl.append(h('dt', {}, k.replace(/_/g, ' ')), h('dd', { class: 'mono' }, Array.isArray(v) ? v.join(', ')
      : typeof v === 'object' ? JSON.stringify(v) : String(v)));
  }
  return h('details', { class: 'evidence' }, h('summary', {}, 'Evidence'), dl);
}

// The exact change a fix makes: the file, the section, each value set (and whether the jail is activated).
function fixText(fix) {
  const sets = Object.entries(fix.set || {}).map(([k, v]) => k + ' = ' + String(v).replace(/\n/g, '\n' + ' '.repeat(k.length + 3)));
  if (fix.activate) sets.unshift('enabled = true');
  return h('div', { class: 'fix' }, h('div', {}, h('strong', {}, 'Fix: '), fix.summary || ''),
    h('pre', { class: 'mono small', 'aria-label': 'The change' }, fix.file + '\n[' + fix.section + ']\n' + sets.join('\n')));
}

function findingBox(f) {
  const sev = SEVERITIES.find((s) => s[0] === f.severity) || SEVERITIES[2];
  const result = h('div', { class: 'fix-result', tabindex: -1 });
  const parts = [h('h3', {}, h('span', { class: 'badge ' + sev[2] }, f.severity), ' ', f.title,
    f.jail ? [' ', h('span', { class: 'muted small' }, '(jail ', jailLink(f.jail), ')')] : null),
  h('p', { class: 'detail' }, f.detail), evidence(f.evidence)];
  const tools = h('div', { class: 'row' });
  if (f.fix) {
    parts.push(fixText(f.fix));
    if (may('advisorFix')) {
      tools.append(action('Apply fix', async (b) => {
        const r = await api('advisorFix', { params: { finding_id: f.id } });
        b.hidden = true;
        result.replaceChildren(h('p', { class: 'ok' }, 'Applied: validated by fail2ban, applied and verified (change ',
          h('span', { class: 'mono' }, r.change), '; revert it under ', link('Configuration', 'config'), ').'),
        r.diff ? h('details', {}, h('summary', {}, 'Diff'), h('pre', { class: 'diff' }, r.diff)) : null);
        result.focus({ preventScroll: true });
      }, 'small', 'Apply fix: ' + f.title));
    } else tools.append(h('span', { class: 'muted small' }, 'An admin can apply this fix.'));
  } else if ('fix' in f) tools.append(h('span', { class: 'muted small' }, 'No automatic fix: change it by hand.'));
  if (f.jail && may('configJail')) {
    if (f.id.startsWith('service-without-jail')) tools.append(h('a', { href: hash('configure', 'activate', f.jail) + '?finding=' + encodeURIComponent(f.id), class: 'small' }, 'Activate with a form…'));
    else tools.append(link('Jail form', 'configure', 'jail', f.jail));
    const filter = f.evidence && f.evidence.filter;
    if (filter && f.id.startsWith('filter-never-matches')) {
      tools.append(h('a', { href: hash('configure', 'filter', filter) + '?jail=' + encodeURIComponent(f.jail) }, 'Filter form'));
    }
  }
  parts.push(tools, result);
  return h('article', { class: 'finding ' + f.severity, 'data-id': f.id }, ...parts);
}

VIEWS.advisor = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Advisor'));
  if (!may('advisor')) { main.append(muted('This server has no advisor.')); return; }
  const out = h('div', { 'aria-busy': 'true' }, muted('Checking the host…'));
  main.append(out);
  const r = await api('advisor');
  if (!alive(ctx)) return;
  out.removeAttribute('aria-busy');
  const host = r.host || {};
  const f2b = host.fail2ban === 'unknown' ? 'unknown (fail2ban does not answer)' : ((host.fail2ban || {}).running_jails || []).join(', ') || 'none';
  const head = h('p', { class: 'muted' }, 'Checked ', time(r.checked_at), '. ', can('operator') ? '' : 'Fixes are shown to operators and admins. ',
    'What bangui cannot see is reported as unknown, never guessed.');
  const facts = h('details', {}, h('summary', {}, 'What was detected on the host'), h('dl', { class: 'kv small' },
    ...Object.entries(host).flatMap(([k, v]) => [h('dt', {}, k.replace(/_/g, ' ')), h('dd', { class: 'mono' },
      k === 'fail2ban' ? f2b : Array.isArray(v) ? (v.length ? v.join(', ') : '—') : v && typeof v === 'object' ? JSON.stringify(v) : String(v))])));
  const groups = SEVERITIES.map(([sev, label]) => {
    const list = (r.findings || []).filter((f) => f.severity === sev);
    return list.length ? box(label + ' (' + list.length + ')', ...list.map(findingBox)) : null;
  }).filter(Boolean);
  // filter tests that outlast a run finish in the background (advisor/filters.py): look again with the page's poll
  if ((r.findings || []).some((f) => f.id === 'filter-tests-pending')) ctx.refresh = async () => { state.rerender(); };
  out.replaceChildren(head, counts(r.counts), facts, ...(groups.length ? groups : [box('Findings', h('p', { class: 'ok' }, 'Nothing to advise: the configuration fits this host.'))]),
    h('p', {}, action('Check again', async () => { state.rerender(); }, 'secondary')));
};

function counts(c) {
  return h('div', { class: 'cards advisor-counts' }, SEVERITIES.map(([sev, label, cls]) => h('div', { class: 'card' },
    h('div', { class: 'n ' + ((c || {})[sev] ? cls : '') }, String((c || {})[sev] ?? 0)), h('div', { class: 'l' }, label.toLowerCase()))));
}

// The dashboard's count by severity: a box after fail2ban's cards, its space held from the start (no layout shift).
const dashboard = VIEWS.dashboard;
if (dashboard) {
  VIEWS.dashboard = (main, args, ctx) => {
    const drawn = dashboard(main, args, ctx);
    if (may('advisor')) {
      const inner = h('div', { class: 'reserve-advisor' }, counts(null));
      const section = box('Advisor', inner);
      const first = main.querySelector('section.box');
      if (first) first.after(section); else main.append(section);
      api('advisor').then((r) => {
        if (!alive(ctx)) return;
        inner.replaceChildren(counts(r.counts), h('p', { class: 'small' }, link('Open the advisor', 'advisor')));
      }, (e) => { if (alive(ctx)) inner.replaceChildren(muted('Advisor unavailable: ' + ((e && e.message) || e))); });
    }
    return drawn;
  };
}
