// One execution: status, timing, trigger, version, response, attempt (and the first attempt of a
// retry), warnings, error and traceback, captured output, settings changed, and a Replay button
// for one whose request was stored. Refreshed every 2 s while it runs.

import { get, post } from '../api.js';
import { fill, h } from '../dom.js';
import { dateTime, duration, relative } from '../format.js';
import { card, errorBox, notice, pageHeader, statusBadge } from '../ui.js';

export async function executionPage(ctx) {
  const { main, params } = ctx;
  let execution = await get(`/executions/${encodeURIComponent(params.id)}`);
  let workflow = null;
  try {
    workflow = await get(`/workflows/${execution.workflow_id}`);
  } catch {
    workflow = null;
  }
  if (!ctx.alive()) return;
  ctx.setTitle(`Execution ${execution.id.slice(-8)}`);

  const draw = () => {
    const e = execution;
    const fact = (label, value, id) => h('div', { class: 'fact', id }, h('dt', null, label), h('dd', null, value));
    const changed = e.settings_changed;
    fill(
      main,
      pageHeader('Execution', {
        crumbs: [
          h('a', { href: '/executions' }, 'Executions'),
          workflow ? h('a', { href: `/workflows/${workflow.id}/executions` }, workflow.name) : null,
        ].filter(Boolean),
        badges: [statusBadge(e.status)],
      }),
      h(
        'section',
        { class: 'card' },
        h(
          'dl',
          { class: 'facts' },
          fact('Status', statusBadge(e.status), 'fact-status'),
          fact('Workflow', workflow ? h('a', { href: `/workflows/${workflow.id}` }, workflow.name) : h('code', null, e.workflow_id)),
          fact('Trigger', e.trigger, 'fact-trigger'),
          fact('Version', workflow ? h('a', { href: `/workflows/${workflow.id}/versions` }, `v${e.version}`) : `v${e.version}`, 'fact-version'),
          fact('Started', h('span', { title: e.started_at }, dateTime(e.started_at), h('span', { class: 'muted small' }, ` · ${relative(e.started_at)}`))),
          fact('Finished', e.finished_at ? h('span', { title: e.finished_at }, dateTime(e.finished_at)) : e.status === 'running' ? 'still running…' : '—'),
          fact('Duration', duration(e.duration_ms), 'fact-duration'),
          fact('Response status', e.response_status ? String(e.response_status) : e.trigger === 'pull' ? 'none (pull)' : '—', 'fact-response'),
          e.fire_at ? fact('Scheduled for', dateTime(e.fire_at)) : null,
          fact('Attempt', String(e.attempt ?? 1), 'fact-attempt'),
          e.retry_of ? fact('Retry of', h('a', { href: `/executions/${e.retry_of}`, id: 'retry-of' }, h('code', null, e.retry_of.slice(-8))), 'fact-retry-of') : null,
          e.replay_of ? fact('Replay of', h('a', { href: `/executions/${e.replay_of}` }, h('code', null, e.replay_of)), 'fact-replay-of') : null,
          e.request_stored === true || e.request_stored === false
            ? fact('Request stored', e.request_stored ? 'yes' : `no: ${e.request_not_stored ?? 'unknown'}`, 'fact-request-stored')
            : null,
          fact('Execution id', h('code', { class: 'wrap' }, e.id)),
        ),
      ),
      e.request_stored ? replayCard(e) : null,
      e.warnings && e.warnings.length
        ? card('Warnings', h('ul', { class: 'warnings', id: 'warnings' }, e.warnings.map((w) => h('li', null, w))))
        : null,
      e.error
        ? card(
            'Error',
            h('div', { class: 'error-head', id: 'error' }, h('strong', null, e.error.type), e.error.message ? `: ${e.error.message}` : ''),
            e.error.traceback ? h('pre', { class: 'output traceback', id: 'traceback' }, e.error.traceback) : null,
          )
        : null,
      card(
        'Output',
        e.logs ? h('pre', { class: 'output', id: 'output' }, e.logs) : h('p', { class: 'muted', id: 'output' }, e.status === 'running' ? 'Nothing printed yet.' : 'Nothing was printed.'),
        e.logs_truncated ? notice('warning', 'The output went over the server’s cap: only its beginning was kept.') : null,
      ),
      card(
        'Settings changed',
        h(
          'div',
          { id: 'settings-changed' },
          !changed
            ? h('p', { class: 'muted' }, e.status === 'running' ? 'Known when the execution ends.' : 'Nothing known.')
            : !changed.added.length && !changed.changed.length && !changed.removed.length
              ? h('p', { class: 'muted' }, 'No change.')
              : h(
                  'div',
                  { class: 'changes' },
                  changeList('Added', changed.added, 'added'),
                  changeList('Changed', changed.changed, 'changed'),
                  changeList('Removed', changed.removed, 'removed'),
                  e.status !== 'success' ? h('p', { class: 'muted small' }, 'The execution did not succeed: these changes were not saved.') : null,
                ),
        ),
      ),
    );
  };

  draw();
  if (execution.status === 'running') {
    const stop = ctx.every(2000, async () => {
      try {
        execution = await get(`/executions/${execution.id}`);
      } catch (error) {
        fill(main, errorBox(error, { title: 'The execution could not be refreshed' }));
        return;
      }
      if (!ctx.alive()) return;
      draw();
      if (execution.status !== 'running') stop();
    });
  }
}

/** The Replay button: runs the stored request again and links the new execution. */
function replayCard(e) {
  const result = h('div', { id: 'replay-result' });
  const button = h('button', { type: 'button', class: 'btn needs-developer', id: 'replay' }, '↻ Replay');
  button.addEventListener('click', async () => {
    button.disabled = true;
    fill(result, h('p', { class: 'muted' }, 'Replaying…'));
    try {
      const replayed = await post(`/executions/${e.id}/replay`, {});
      fill(result, h('p', null, 'New execution: ', h('a', { href: `/executions/${replayed.id}`, id: 'replay-link' }, replayed.id), ' ', statusBadge(replayed.status)));
    } catch (error) {
      fill(result, notice('error', `${error.code}: ${error.message}`));
    } finally {
      button.disabled = false;
    }
  });
  return card(
    'Replay',
    h('p', { class: 'muted small' }, 'Run the stored request again on the active version, as a new execution. No signature is checked and the original sender is not called.'),
    h('div', { class: 'form-actions needs-developer' }, button),
    result,
  );
}

function changeList(title, keys, kind) {
  if (!keys.length) return null;
  return h('div', { class: 'change' }, h('span', { class: 'change-title' }, title), keys.map((k) => h('code', { class: `chip chip-${kind}` }, k)));
}
