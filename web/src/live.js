// A live list of executions, polled every 2 s, with a status filter and older pages.

import { get } from './api.js';
import { fill, h } from './dom.js';
import { STATUSES } from './format.js';
import { setQuery } from './router.js';
import { errorBox, executionsTable, loading } from './ui.js';

const PAGE = 50;

/** `base`: `/executions` or `/workflows/{id}/executions`. */
export function liveExecutions(ctx, { base, withWorkflow = false, empty }) {
  const select = h(
    'select',
    { class: 'input select', 'aria-label': 'Filter by status', name: 'status' },
    h('option', { value: '' }, 'All statuses'),
    STATUSES.map((s) => h('option', { value: s }, s)),
  );
  select.value = ctx.query.get('status') ?? '';
  const indicator = h('span', { class: 'live', title: 'The list refreshes every 2 seconds' }, h('span', { class: 'live-dot' }), 'Live');
  const updated = h('span', { class: 'muted small' });
  const body = h('div', { class: 'executions-body' }, loading());
  const more = h('button', { type: 'button', class: 'btn btn-small', hidden: true }, 'Load older');
  let recent = null;
  let older = [];
  let olderExhausted = false;
  let failure = null;
  let sequence = 0;

  function draw() {
    if (!recent) {
      if (failure) fill(body, errorBox(failure, { title: 'The executions could not be loaded', retry: refresh }));
      return;
    }
    const seen = new Set(recent.map((e) => e.id));
    const all = recent.concat(older.filter((e) => !seen.has(e.id)));
    fill(
      body,
      failure ? errorBox(failure, { title: 'Refreshing failed; showing the last list' }) : null,
      executionsTable(all, { withWorkflow, empty: select.value ? `No ${select.value} execution.` : empty }),
    );
    // More can be loaded while the last page read was full.
    more.hidden = older.length ? olderExhausted : recent.length < PAGE;
    indicator.classList.toggle('stale', Boolean(failure));
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  function query(extra = {}) {
    const q = new URLSearchParams({ limit: String(PAGE), ...extra });
    if (select.value) q.set('status', select.value);
    return `${base}?${q}`;
  }

  async function refresh() {
    const mine = ++sequence;
    try {
      const data = await get(query());
      if (mine !== sequence || !ctx.alive()) return;
      recent = data.executions;
      failure = null;
    } catch (error) {
      if (mine !== sequence || !ctx.alive()) return;
      failure = error;
    }
    draw();
  }

  more.addEventListener('click', async () => {
    const list = older.length ? older : recent;
    const last = list[list.length - 1];
    if (!last) return;
    more.disabled = true;
    try {
      const data = await get(query({ before: last.id }));
      older = older.concat(data.executions);
      olderExhausted = data.executions.length < PAGE;
      failure = null;
    } catch (error) {
      failure = error;
    } finally {
      more.disabled = false;
    }
    draw();
  });

  select.addEventListener('change', () => {
    setQuery({ status: select.value });
    recent = null;
    older = [];
    olderExhausted = false;
    fill(body, loading());
    refresh();
  });

  refresh();
  ctx.every(2000, refresh);
  return h(
    'div',
    { class: 'live-executions' },
    h('div', { class: 'toolbar' }, select, indicator, updated),
    body,
    h('div', { class: 'more' }, more),
  );
}
