// Jobs, blocklists, API tokens, users and CrowdSec bouncer keys.
import {
  h, api, state, alive, can, may, box, kv, num, dur, time, rel, table, field, onSubmit, action, notice, showError, statusBadge,
  jailLink, ROLES, adminsOnly, VIEWS,
} from './core.js';

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
        setTimeout(state.refreshNow, 1500);
      }, 'small', 'Run ' + j.name + ' now')]);
    }
    list.replaceChildren(table(r.jobs, cols, 'No jobs.'));
  };
  await state.refreshNow();
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
      field('Every (hours)', hours), field('Enabled', on), h('button', { type: 'submit', value: 'add' }, 'Add blocklist'),
      may('blocklistPreview') ? h('button', { type: 'submit', value: 'preview', class: 'secondary' }, 'Preview (no ban)') : null);
    onSubmit(form, async (submitter) => {
      const body = { name: name.value.trim(), url: url.value.trim(), jail: jail.value,
        interval_s: Math.round(Number(hours.value) * 3600), enabled: on.checked };
      if (submitter && submitter.value === 'preview') {
        // a dry run (issue 23 item 8): what an import would ban, the lines it cannot read and the entries refused
        const p = await api('blocklistPreview', { body });
        const sample = (xs) => (xs && xs.length ? ' (e.g. ' + xs.slice(0, 5).join(', ') + ')' : '');
        notice('Preview of ' + body.url + ': ' + num(p.entries) + ' entries would be banned; ' + num(p.invalid) +
          ' invalid lines' + sample(p.invalid_samples) + '; ' + num(p.refused) + ' refused' + sample(p.refused_samples) + '. Nothing was banned.');
        return;
      }
      const r = await api('newBlocklist', { body });
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
    // a dozen facts per list in 7 columns: the table fits 1366 px with its buttons (the URL wraps)
    const lastImport = (b) => (b.last_count == null ? '—' : h('span', {}, num(b.last_count) + ' entries, ' + num(b.last_added) + ' new',
      b.last_invalid ? h('span', { class: 'warn', title: (b.last_invalid_examples || []).join('\n') }, ', ' + num(b.last_invalid) + ' invalid') : ''));
    const cols = [['Name', (b) => h('div', {}, h('span', { class: 'mono' }, b.name), h('div', { class: 'mono small url muted' }, b.url)), '', (b) => b.name],
      ['Jail', (b) => jailLink(b.jail), '', (b) => b.jail],
      ['Every', (b) => h('span', {}, dur(b.interval_s), b.enabled ? '' : [' ', h('span', { class: 'badge warn' }, 'off')]), 'hide-sm', (b) => b.interval_s],
      ['Last run', (b) => (b.last_run ? h('div', {}, statusBadge(b.last_status), ' ', time(b.last_run)) : h('span', { class: 'muted' }, 'never')), '', (b) => b.last_run || ''],
      ['Last import', lastImport, 'hide-sm'],
      ['Next due', (b) => (b.next_due ? rel(b.next_due) : b.enabled ? 'at the next check' : '—'), 'hide-sm'],
      ['Last error', (b) => (b.last_error ? h('pre', { class: 'err' }, b.last_error) : '—')]];
    if (can('operator')) {
      cols.push(['', (b) => h('div', { class: 'row' },
        action('Run now', async () => {
          const res = await api('runBlocklist', { params: { name: b.name } });
          notice('Asked to import ' + b.name + (res && res.leader_pid ? ' (leader pid ' + res.leader_pid + ').' : '; no leader right now, the next one will run it.'));
          setTimeout(state.refreshNow, 1500);
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
  await state.refreshNow();
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

// CrowdSec bouncer keys (issue 22): they read GET /v1/decisions/stream and nothing else.
VIEWS.bouncers = async (main, _args, ctx) => {
  const name = h('input', { required: true, maxlength: 64, spellcheck: 'false' });
  const secret = h('div');
  const list = h('div');
  const form = h('form', { class: 'inline' }, field('Name', name), h('button', { type: 'submit' }, 'Create key'));
  const load = async () => {
    const r = await api('bouncers');
    if (!alive(ctx)) return;
    list.replaceChildren(table(r.bouncers, [
      ['Name', (b) => b.name], ['Created', (b) => time(b.created), 'hide-sm'],
      ['Last pull', (b) => time(b.last_pull, 'never')], ['From', (b) => b.last_address || '', 'hide-sm'],
      ['User agent', (b) => b.user_agent || ''],
      ['', (b) => action('Delete', async () => {
        if (!confirm('Delete the bouncer key "' + b.name + '"? That bouncer is refused at once.')) return;
        await api('deleteBouncer', { params: { name: b.name } });
        notice('Bouncer ' + b.name + ' deleted.');
        await load();
      }, 'danger small', 'Delete bouncer ' + b.name)],
    ], 'No bouncers.'));
  };
  onSubmit(form, async () => {
    const r = await api('newBouncer', { body: { name: name.value.trim() } });
    const out = h('input', { class: 'secret', readonly: true, value: r.api_key, 'aria-label': 'New bouncer key' });
    secret.replaceChildren(h('div', { class: 'box secret-box' },
      h('p', {}, h('strong', {}, 'Key for "' + r.name + '" created. It is shown only this once: copy it now.')),
      h('div', { class: 'row' }, out),
      h('p', { class: 'muted small' }, 'In the bouncer\'s config: api_url: ' + location.origin + '/ and api_key: <key>'),
      h('button', { type: 'button', class: 'secondary small', onclick: () => secret.replaceChildren() }, 'Done')));
    out.select();
    name.value = '';
    await load();
  });
  main.append(h('h1', {}, 'CrowdSec bouncers'));
  if (adminsOnly(main, 'only admins manage bouncer keys.')) return;
  main.append(box('New bouncer key', form, secret), box('Bouncers', list));
  await load();
};

VIEWS.users = async (main, _args, ctx) => {
  main.append(h('h1', {}, 'Users'));
  if (adminsOnly(main, 'only admins manage users.')) return;
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
      ['User', (u) => u.name + (state.me && u.name === state.me.username ? ' (you)' : '')], ['Role', (u) => u.role],
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
    if (state.me && u.name === state.me.username) { state.sessionEnded('Your account changed: please log in again.'); return; }
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

