// The audit log: who changed what, when (admin keys: every team; developer keys: their team).

import { get } from '../api.js';
import { fill, h, link } from '../dom.js';
import { dateTime, relative } from '../format.js';
import { setQuery } from '../router.js';
import { errorBox, loading, pageHeader, table } from '../ui.js';

export async function auditPage(ctx) {
  const { main, query } = ctx;
  const input = (name, placeholder) =>
    h('input', { type: 'search', class: 'input filter', name, placeholder, 'aria-label': placeholder, value: query.get(name) ?? '' });
  const workflow = input('workflow', 'Workflow (name or id)');
  const actor = input('actor', 'Key (name or id)');
  const body = h('div', { class: 'audit-body' }, loading());
  const form = h(
    'form',
    {
      class: 'toolbar',
      onsubmit: (event) => {
        event.preventDefault();
        setQuery({ workflow: workflow.value.trim(), actor: actor.value.trim() });
        refresh();
      },
    },
    workflow,
    actor,
    h('button', { type: 'submit', class: 'btn' }, 'Filter'),
  );
  fill(main, pageHeader('Audit log'), form, body);

  async function refresh() {
    const params = new URLSearchParams({ limit: '200' });
    if (workflow.value.trim()) params.set('workflow', workflow.value.trim());
    if (actor.value.trim()) params.set('actor', actor.value.trim());
    try {
      const { entries } = await get(`/audit?${params}`);
      if (!ctx.alive()) return;
      fill(
        body,
        table(
          [
            { title: 'When', cell: (e) => h('span', { title: dateTime(e.at) }, dateTime(e.at), h('span', { class: 'muted small' }, ` · ${relative(e.at)}`)) },
            { title: 'Key', cell: (e) => h('span', { title: e.actor.id }, e.actor.name) },
            { title: 'Action', cell: (e) => h('code', null, e.action) },
            { title: 'Team', cell: (e) => e.team ?? '—' },
            { title: 'Workflow', cell: (e) => (e.workflow ? link(`/workflows/${e.workflow_id}`, e.workflow) : '—') },
            { title: 'Summary', cell: (e) => e.summary },
          ],
          entries,
          { empty: 'No changes recorded yet.' },
        ),
      );
    } catch (error) {
      if (ctx.alive()) fill(body, errorBox(error, { title: 'The audit log could not be loaded', retry: refresh }));
    }
  }
  await refresh();
}
