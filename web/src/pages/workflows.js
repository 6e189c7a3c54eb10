// The workflows list: mode, runtime, state, last execution, next run, error rate over 24 h.

import { get } from '../api.js';
import { fill, h, link } from '../dom.js';
import { dateTime, percent, relative } from '../format.js';
import { setQuery } from '../router.js';
import { enabledBadge, errorBox, loading, modeBadge, pageHeader, statusBadge, table } from '../ui.js';

export async function workflowsPage(ctx) {
  const { main, query } = ctx;
  const filter = h('input', {
    type: 'search',
    class: 'input filter',
    placeholder: 'Filter by name',
    'aria-label': 'Filter by name',
    value: query.get('q') ?? '',
  });
  const body = h('div', { class: 'workflows-body' }, loading());
  const status = h('div', { class: 'list-status muted small' });
  fill(
    main,
    pageHeader('Workflows', {
      actions: [h('a', { href: '/workflows/new', class: 'btn btn-primary needs-developer', id: 'create-workflow' }, '+ Create workflow')],
    }),
    h('div', { class: 'toolbar' }, filter, status),
    body,
  );

  let data = null;
  let failure = null;
  const draw = () => {
    if (failure && !data) return fill(body, errorBox(failure, { title: 'The workflows could not be loaded', retry: refresh }));
    if (!data) return;
    const needle = filter.value.trim().toLowerCase();
    const stats = new Map(data.stats.map((s) => [s.workflow_id, s]));
    const rows = data.workflows.filter((w) => w.name.toLowerCase().includes(needle));
    if (!data.workflows.length) {
      return fill(
        body,
        h('div', { class: 'empty big' }, h('p', null, 'No workflows yet.'), h('p', { class: 'needs-developer' }, h('a', { href: '/workflows/new', class: 'btn btn-primary' }, 'Create your first workflow'))),
      );
    }
    fill(
      body,
      failure ? errorBox(failure, { title: 'Refreshing failed; showing the last list' }) : null,
      table(
        [
          { title: 'Name', class: 'name', cell: (w) => link(`/workflows/${w.id}`, h('strong', null, w.name)) },
          { title: 'Mode', cell: (w) => modeBadge(w.mode) },
          { title: 'Runtime', cell: (w) => h('code', null, w.runtime) },
          {
            title: 'State',
            cell: (w) =>
              h(
                'span',
                { class: 'badges' },
                enabledBadge(w.enabled),
                w.version === null ? h('span', { class: 'badge build-failed', title: 'No version has deployed: the workflow does not run (its hook answers 503).' }, 'no active version') : null,
              ),
          },
          {
            title: 'Last execution',
            cell: (w) => {
              const last = stats.get(w.id)?.last_execution;
              if (!last) return h('span', { class: 'muted' }, 'never');
              return h('a', { href: `/executions/${last.id}`, class: 'plain', title: dateTime(last.started_at) }, statusBadge(last.status), ' ', h('span', { class: 'muted small' }, relative(last.started_at)));
            },
          },
          {
            title: 'Next run',
            cell: (w) => {
              if (w.mode !== 'pull') return h('span', { class: 'muted' }, 'on call');
              if (!w.enabled) return h('span', { class: 'muted' }, 'paused');
              if (!w.next_run_at) return h('span', { class: 'muted' }, '—');
              return h('span', { title: dateTime(w.next_run_at) }, relative(w.next_run_at));
            },
          },
          {
            title: 'Errors (24 h)',
            class: 'num',
            cell: (w) => {
              const day = stats.get(w.id)?.last_24h;
              if (!day || !day.finished) return h('span', { class: 'muted' }, '—');
              const level = day.error_rate === 0 ? 'ok' : day.error_rate < 0.1 ? 'warn' : 'bad';
              return h('span', { class: `rate rate-${level}`, title: `${day.failed} failed of ${day.finished} finished in the last 24 h` }, percent(day.error_rate), h('span', { class: 'muted small' }, ` · ${day.failed}/${day.finished}`));
            },
          },
        ],
        rows,
        { empty: `No workflow matches “${filter.value}”.`, rowHref: (w) => `/workflows/${w.id}` },
      ),
    );
    status.textContent = `${rows.length} of ${data.workflows.length} workflows · updated ${new Date().toLocaleTimeString()}`;
  };

  async function refresh() {
    try {
      const [workflows, stats] = await Promise.all([get('/workflows'), get('/workflow-stats')]);
      if (!ctx.alive()) return;
      data = { workflows: workflows.workflows, stats: stats.stats };
      failure = null;
    } catch (error) {
      if (!ctx.alive()) return;
      failure = error;
    }
    draw();
  }

  filter.addEventListener('input', () => {
    setQuery({ q: filter.value.trim() });
    draw();
  });
  await refresh();
  ctx.every(5000, refresh);
}
