// The Executions tab's "Failure alerts" card: the workflow's `alerts` (where a summary of each
// failed execution is POSTed, on which statuses, how often at most), its `on_failure` error
// handler, and the recent deliveries (CONTRACT.md "Failure alerts").

import { get, patch } from '../api.js';
import { fill, h, link } from '../dom.js';
import { dateTime, relative } from '../format.js';
import { card, errorBox, field, notice, table, toast } from '../ui.js';

const STATUSES = ['error', 'timeout', 'killed', 'skipped', 'interrupted', 'success'];
const DEFAULT_ON = ['error', 'timeout', 'killed'];

/** The card, editing `page.workflow` and saving with one PATCH. */
export function alertsCard(page) {
  const own = page.workflow.alerts;
  const url = h('input', { class: 'input mono', id: 'alert-url', 'aria-label': 'Alert URL', value: own?.url ?? '', placeholder: 'https://hooks.slack.com/services/…', spellcheck: false, autocomplete: 'off' });
  const on = own?.on ?? DEFAULT_ON;
  const boxes = STATUSES.map((status) => h('input', { type: 'checkbox', value: status, checked: on.includes(status), 'aria-label': status }));
  const statuses = h('div', { class: 'alert-statuses', id: 'alert-on' }, boxes.map((box) => h('label', { class: 'alert-status' }, box, ` ${box.value}`)));
  const interval = h('input', { class: 'input', id: 'alert-min-interval', type: 'number', min: 0, value: own?.min_interval_s ?? 0, 'aria-label': 'Minimum interval in seconds' });
  const handler = h('input', { class: 'input mono', id: 'on-failure', 'aria-label': 'Error handler workflow', value: page.workflow.on_failure ?? '', placeholder: 'a catch workflow of this team', spellcheck: false });
  const message = h('div', { 'aria-live': 'polite' });
  const deliveries = h('div', { id: 'alert-deliveries' });
  const save = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'save-alerts' }, 'Save');

  const alertsValue = () => {
    if (!url.value.trim()) return null;
    return {
      url: url.value.trim(),
      on: boxes.filter((box) => box.checked).map((box) => box.value),
      min_interval_s: Number(interval.value || 0),
    };
  };

  save.addEventListener('click', async () => {
    save.disabled = true;
    try {
      const body = { alerts: alertsValue(), on_failure: handler.value.trim() || null };
      page.setWorkflow(await patch(`/workflows/${page.workflow.id}`, body));
      fill(message);
      toast('Alert settings saved');
    } catch (error) {
      fill(message, notice('error', `${error.code}: ${error.message}`));
    } finally {
      save.disabled = false;
    }
  });

  loadDeliveries(page, deliveries);
  return h(
    'div',
    { id: 'alerts-card' },
    card(
      'Failure alerts',
      h('p', { class: 'muted small' }, 'When an execution ends in one of these statuses, flowd POSTs a JSON summary to the URL; its one-line text field is what Slack, Mattermost and Teams incoming webhooks show. Without a URL the server’s default applies, if it has one.'),
      field('Alert URL (http or https)', url),
      h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Statuses'), statuses),
      field('At most one alert per (seconds)', interval, 'The next alert says how many were suppressed in between.'),
      field('Error handler', handler, 'A catch workflow of this team, run with the summary as _request whenever an alert is triggered.'),
      message,
      h('div', { class: 'form-actions' }, save),
      h('span', { class: 'field-label spaced' }, 'Recent deliveries'),
      deliveries,
    ),
  );
}

async function loadDeliveries(page, box) {
  try {
    const answer = await get(`/workflows/${page.workflow.id}/alerts?limit=20`);
    fill(
      box,
      table(
        [
          { title: 'When', cell: (d) => h('span', { title: dateTime(d.at) }, relative(d.at)) },
          { title: 'Execution', cell: (d) => link(`/executions/${d.execution_id}`, d.execution_id.slice(0, 8)) },
          { title: 'Answer', cell: (d) => (d.error ? h('span', { class: 'alert-delivery-error' }, d.error) : String(d.status_code)) },
          { title: 'Attempts', cell: (d) => String(d.attempts) },
          { title: 'Suppressed before', cell: (d) => String(d.suppressed) },
        ],
        answer.deliveries,
        { empty: 'No alert sent yet.' },
      ),
    );
  } catch (error) {
    fill(box, errorBox(error, { title: 'The deliveries could not be loaded' }));
  }
}
