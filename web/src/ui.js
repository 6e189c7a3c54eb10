// Pieces shared by the pages: badges, error boxes, cards, the executions table.

import { h, link } from './dom.js';
import { dateTime, duration, relative, shortId } from './format.js';

export function statusBadge(status) {
  return h('span', { class: `badge status status-${status}`, 'data-status': status }, status);
}

export function modeBadge(mode) {
  return h('span', { class: `badge mode mode-${mode}`, title: mode === 'catch' ? 'Runs on every call of its hook URL' : 'Runs on a schedule' }, mode);
}

export function enabledBadge(enabled) {
  return enabled
    ? h('span', { class: 'badge state-active' }, 'active')
    : h('span', { class: 'badge state-paused' }, 'paused');
}

/** An API error (or any error) shown where the content would have been. */
export function errorBox(error, { title, retry } = {}) {
  const status = error && error.status ? `${error.status} ${error.code}` : error && error.code ? error.code : 'error';
  return h(
    'div',
    { class: 'alert alert-error', role: 'alert' },
    h('div', { class: 'alert-title' }, title ?? 'Something went wrong'),
    h('div', { class: 'alert-body' }, h('code', { class: 'alert-code' }, status), ' ', error?.message ?? String(error)),
    retry ? h('button', { class: 'btn btn-small', type: 'button', onclick: retry }, 'Try again') : null,
  );
}

export function notice(kind, ...content) {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...content);
}

export function card(title, ...content) {
  return h('section', { class: 'card' }, title ? h('h2', { class: 'card-title' }, title) : null, ...content);
}

export function loading(text = 'Loading…') {
  return h('div', { class: 'loading' }, h('span', { class: 'spinner' }), text);
}

/** A page's title line, with actions on the right. */
export function pageHeader(title, { crumbs = [], badges = [], actions = [] } = {}) {
  return h(
    'header',
    { class: 'page-header' },
    crumbs.length ? h('nav', { class: 'crumbs' }, crumbs.map((c) => [c, h('span', { class: 'crumb-sep' }, '/')])) : null,
    h(
      'div',
      { class: 'page-header-row' },
      h('div', { class: 'page-title' }, h('h1', null, title), badges.length ? h('span', { class: 'badges' }, badges) : null),
      actions.length ? h('div', { class: 'page-actions' }, actions) : null,
    ),
  );
}

/** A table whose rows turn into cards on a narrow screen (each cell says what it is). */
export function table(columns, rows, { empty = 'Nothing here yet.', rowClass, rowHref } = {}) {
  if (!rows.length) return h('div', { class: 'empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'table' },
      h('thead', null, h('tr', null, columns.map((c) => h('th', { class: c.class }, c.title)))),
      h(
        'tbody',
        null,
        rows.map((row) =>
          h(
            'tr',
            { class: rowClass ? rowClass(row) : null, 'data-href': rowHref ? rowHref(row) : null },
            columns.map((c) => h('td', { class: c.class, 'data-label': c.title }, c.cell(row))),
          ),
        ),
      ),
    ),
  );
}

/** The executions table, for one workflow (`withWorkflow` false) or all. */
export function executionsTable(executions, { withWorkflow = false, empty } = {}) {
  const columns = [
    { title: 'Status', cell: (e) => statusBadge(e.status) },
    withWorkflow
      ? { title: 'Workflow', cell: (e) => link(`/workflows/${e.workflow_id}`, e.workflow_name ?? shortId(e.workflow_id)) }
      : null,
    { title: 'Started', cell: (e) => h('span', { title: dateTime(e.started_at) }, `${dateTime(e.started_at)}`, h('span', { class: 'muted small' }, ` · ${relative(e.started_at)}`)) },
    { title: 'Duration', class: 'num', cell: (e) => duration(e.duration_ms) },
    { title: 'Trigger', cell: (e) => e.trigger },
    { title: 'Version', class: 'num', cell: (e) => `v${e.version}` },
    { title: 'Response', class: 'num', cell: (e) => (e.response_status ? String(e.response_status) : '—') },
    {
      title: 'Execution',
      cell: (e) =>
        h(
          'span',
          null,
          link(`/executions/${e.id}`, h('code', null, shortId(e.id))),
          e.error ? h('span', { class: 'muted small error-type' }, ` ${e.error.type}`) : null,
          e.warnings && e.warnings.length ? h('span', { class: 'warn-dot', title: e.warnings.join('\n') }, ' ⚠') : null,
        ),
    },
  ].filter(Boolean);
  return table(columns, executions, {
    empty: empty ?? 'No executions yet.',
    rowClass: (e) => `row-link row-${e.status}`,
    rowHref: (e) => `/executions/${e.id}`,
  });
}

/** A labelled form field. */
export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control, hint ? h('span', { class: 'field-hint' }, hint) : null);
}

/** A short message at the bottom of the screen. */
export function toast(message) {
  const box = h('div', { class: 'toast', role: 'status' }, message);
  document.body.append(box);
  setTimeout(() => box.remove(), 3000);
}
