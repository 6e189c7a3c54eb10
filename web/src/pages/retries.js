// The Function tab's "Retries" card: the workflow's `retry` policy — how many attempts its
// asynchronous calls and scheduled runs get, the first backoff, and the statuses retried
// (CONTRACT.md §2 "Retries").

import { patch } from '../api.js';
import { fill, h } from '../dom.js';
import { card, field, notice, toast } from '../ui.js';

const STATUSES = ['error', 'timeout', 'killed'];

/** The card, editing `page.workflow.retry` and saving with one PATCH. */
export function retriesCard(page) {
  const retry = page.workflow.retry ?? null;
  const enabled = h('input', { type: 'checkbox', id: 'retry-enabled', checked: Boolean(retry) });
  const attempts = h('input', { class: 'input mono', id: 'retry-max-attempts', type: 'number', min: 1, max: 10, value: retry?.max_attempts ?? 3, 'aria-label': 'Attempts in all' });
  const backoff = h('input', { class: 'input mono', id: 'retry-backoff-s', type: 'number', min: 0.1, step: 0.1, value: retry?.backoff_s ?? 1, 'aria-label': 'First backoff in seconds' });
  const on = STATUSES.map((status) =>
    h('input', { type: 'checkbox', id: `retry-on-${status}`, value: status, checked: retry ? retry.on.includes(status) : true }),
  );
  const options = h('div');
  const message = h('div');
  const save = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'save-retry' }, 'Save');

  const drawOptions = () => {
    fill(
      options,
      enabled.checked
        ? [
            field('Attempts in all', attempts, 'The first included, 1 to 10.'),
            field('First backoff (s)', backoff, 'Each further retry waits twice as long, give or take 20 %.'),
            h(
              'div',
              { class: 'field' },
              h('span', { class: 'field-label' }, 'Retried after'),
              h('div', { class: 'checks' }, on.map((box) => h('label', null, box, ` ${box.value}`))),
            ),
          ]
        : null,
    );
  };
  enabled.addEventListener('change', drawOptions);
  drawOptions();

  const retryValue = () =>
    enabled.checked
      ? { max_attempts: Number(attempts.value), backoff_s: Number(backoff.value), on: on.filter((box) => box.checked).map((box) => box.value) }
      : null;

  save.addEventListener('click', async () => {
    save.disabled = true;
    try {
      page.setWorkflow(await patch(`/workflows/${page.workflow.id}`, { retry: retryValue() }));
      fill(message);
      toast('Retries saved');
    } catch (error) {
      fill(message, notice('error', `${error.code}: ${error.message}`));
    } finally {
      save.disabled = false;
    }
  });

  return card(
    'Retries',
    h('p', { class: 'muted small' }, 'Run an asynchronous call or a scheduled run again when it fails: each attempt is an execution of its own, linked to the first. Synchronous calls are not retried: their caller is waiting.'),
    h('label', { class: 'check' }, enabled, ' Retry failed executions'),
    options,
    message,
    h('div', { class: 'form-actions' }, save),
  );
}
