// Teams and API keys (admin keys): create, rename and delete teams; create and revoke keys, a new
// key shown once.

import { del, get, patch, post } from '../api.js';
import { fill, h } from '../dom.js';
import { dateTime } from '../format.js';
import { card, errorBox, field, loading, notice, pageHeader, table, toast } from '../ui.js';

export async function adminPage(ctx) {
  const teamsBox = h('div', null, loading());
  const keysBox = h('div', null, loading());
  const createdBox = h('div', { id: 'created-key' });
  fill(ctx.main, pageHeader('Teams and keys'), card('Teams', teamsBox), card('API keys', createdBox, keysBox));

  async function refresh() {
    try {
      const [{ teams }, { api_keys: keys }] = await Promise.all([get('/teams'), get('/api-keys')]);
      if (!ctx.alive()) return;
      drawTeams(teams);
      drawKeys(keys, teams);
    } catch (error) {
      if (ctx.alive()) fill(teamsBox, errorBox(error, { title: 'Teams and keys could not be loaded', retry: refresh }));
    }
  }

  const failed = (error) => toast(`${error.code}: ${error.message}`);

  function drawTeams(teams) {
    const name = h('input', { class: 'input', id: 'new-team', placeholder: 'payroll', required: true });
    fill(
      teamsBox,
      table(
        [
          { title: 'Name', cell: (t) => h('strong', null, t.name) },
          { title: 'Created', cell: (t) => dateTime(t.created_at) },
          {
            title: '',
            cell: (t) =>
              h(
                'span',
                { class: 'badges' },
                h('button', {
                  type: 'button',
                  class: 'btn btn-small',
                  onclick: async () => {
                    const renamed = window.prompt(`Rename team ${t.name} to (its hook URLs change with it):`, t.name);
                    if (!renamed || renamed === t.name) return;
                    await patch(`/teams/${encodeURIComponent(t.name)}`, { name: renamed }).then(refresh, failed);
                  },
                }, 'Rename'),
                h('button', {
                  type: 'button',
                  class: 'btn btn-small btn-ghost btn-danger',
                  onclick: async () => {
                    if (!window.confirm(`Delete team ${t.name} and its keys?`)) return;
                    await del(`/teams/${encodeURIComponent(t.name)}`).then(refresh, failed);
                  },
                }, 'Delete'),
              ),
          },
        ],
        teams,
      ),
      h(
        'form',
        {
          class: 'toolbar',
          onsubmit: async (event) => {
            event.preventDefault();
            await post('/teams', { name: name.value.trim() }).then(refresh, failed);
          },
        },
        field('New team', name),
        h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create team'),
      ),
    );
  }

  function drawKeys(keys, teams) {
    const name = h('input', { class: 'input', id: 'new-key-name', placeholder: 'ci-deploy', required: true });
    const role = h('select', { class: 'input', id: 'new-key-role' }, ['viewer', 'developer', 'admin'].map((r) => h('option', { value: r }, r)));
    const team = h('select', { class: 'input', id: 'new-key-team' }, teams.map((t) => h('option', { value: t.name }, t.name)));
    const expires = h('input', { class: 'input', id: 'new-key-expires', type: 'date' });
    fill(
      keysBox,
      table(
        [
          { title: 'Name', cell: (k) => h('strong', null, k.name) },
          { title: 'Prefix', cell: (k) => h('code', null, `${k.prefix}…`) },
          { title: 'Role', cell: (k) => k.role },
          { title: 'Team', cell: (k) => k.team },
          { title: 'Created', cell: (k) => dateTime(k.created_at) },
          { title: 'Expires', cell: (k) => (k.expires_at ? dateTime(k.expires_at) : 'never') },
          { title: 'Last used', cell: (k) => (k.last_used_at ? dateTime(k.last_used_at) : '—') },
          {
            title: '',
            cell: (k) =>
              h('button', {
                type: 'button',
                class: 'btn btn-small btn-ghost btn-danger',
                onclick: async () => {
                  if (!window.confirm(`Revoke the key ${k.name}? It is refused from its next request on.`)) return;
                  await del(`/api-keys/${encodeURIComponent(k.id)}`).then(refresh, failed);
                },
              }, 'Revoke'),
          },
        ],
        keys,
      ),
      h(
        'form',
        {
          class: 'toolbar',
          onsubmit: async (event) => {
            event.preventDefault();
            const body = {
              name: name.value.trim(),
              role: role.value,
              team: team.value,
              expires_at: expires.value ? new Date(`${expires.value}T00:00:00Z`).toISOString() : null,
            };
            try {
              const created = await post('/api-keys', body);
              fill(
                createdBox,
                notice('info', h('p', null, `The key ${created.name} (${created.role}, team ${created.team}) is shown this once: store it now.`), h('code', { class: 'key-once' }, created.key)),
              );
              await refresh();
            } catch (error) {
              failed(error);
            }
          },
        },
        field('Name', name),
        field('Role', role),
        field('Team', team),
        field('Expires', expires),
        h('button', { type: 'submit', class: 'btn btn-primary', id: 'create-key' }, 'Create key'),
      ),
    );
  }

  await refresh();
}
