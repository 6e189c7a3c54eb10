// The schedule editor of pull workflows: an interval or a cron expression with a time zone,
// with the next five fire times computed by the server (POST /schedules/preview) as you type.

import { post } from './api.js';
import { fill, h } from './dom.js';
import { zonedTime, relative, dateTime } from './format.js';

const PRESETS = [
  ['Every 5 minutes', '*/5 * * * *'],
  ['Hourly', '0 * * * *'],
  ['Daily at 03:00', '0 3 * * *'],
  ['Weekdays at 09:00', '0 9 * * 1-5'],
];

export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function timeZones() {
  try {
    const zones = Intl.supportedValuesOf('timeZone');
    return zones.includes('UTC') ? zones : ['UTC', ...zones];
  } catch {
    return ['UTC'];
  }
}

let zoneList = null;
function zoneDatalist() {
  if (!zoneList) {
    zoneList = h('datalist', { id: 'timezones' }, timeZones().map((z) => h('option', { value: z })));
    document.body.append(zoneList);
  }
  return 'timezones';
}

/**
 * `initial`: a schedule JSON (`{"every"}` or `{"cron", "timezone"}`) or null.
 * Returns `{ el, value() }`; `value()` is the schedule JSON as edited.
 */
export function scheduleEditor(initial, { onChange } = {}) {
  const kind = initial && initial.every ? 'every' : 'cron';
  const name = `schedule-kind-${Math.random().toString(36).slice(2, 8)}`;
  const radio = (value, label) =>
    h('label', { class: 'segment' }, h('input', { type: 'radio', name, value, checked: kind === value, onchange: update }), h('span', null, label));
  const every = h('input', { class: 'input', name: 'every', value: initial?.every ?? '5m', placeholder: '5m', 'aria-label': 'Interval', oninput: update, spellcheck: false });
  const cron = h('input', { class: 'input mono', name: 'cron', value: initial?.cron ?? '0 3 * * *', placeholder: '*/5 * * * *', 'aria-label': 'Cron expression', oninput: update, spellcheck: false });
  const timezone = h('input', {
    class: 'input',
    name: 'timezone',
    value: initial?.timezone ?? browserTimeZone(),
    list: zoneDatalist(),
    placeholder: 'UTC',
    'aria-label': 'Time zone',
    oninput: update,
    spellcheck: false,
  });
  const everyPane = h(
    'div',
    { class: 'schedule-pane' },
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Run every'), every, h('span', { class: 'field-hint' }, 'Units d, h, m, s, largest first: 30s, 5m, 1h30m, 1d. At least 1 s. Counted from when the schedule is saved.')),
  );
  const cronPane = h(
    'div',
    { class: 'schedule-pane' },
    h(
      'div',
      { class: 'grid-2' },
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Cron expression'), cron, h('span', { class: 'field-hint' }, 'minute hour day-of-month month day-of-week')),
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Time zone'), timezone, h('span', { class: 'field-hint' }, 'An IANA name: UTC, Europe/Paris, America/New_York…')),
    ),
    h(
      'div',
      { class: 'presets' },
      h('span', { class: 'presets-label' }, 'Examples:'),
      PRESETS.map(([label, expression]) =>
        h(
          'button',
          {
            type: 'button',
            class: 'btn btn-small',
            onclick: () => {
              cron.value = expression;
              update();
            },
          },
          label,
        ),
      ),
    ),
  );
  const preview = h('div', { class: 'schedule-preview', 'aria-live': 'polite' });
  const el = h(
    'div',
    { class: 'schedule-editor' },
    h('div', { class: 'segments', role: 'radiogroup', 'aria-label': 'Schedule type' }, radio('cron', 'Cron'), radio('every', 'Interval')),
    everyPane,
    cronPane,
    h('div', { class: 'preview-title' }, 'Next five fire times'),
    preview,
  );

  function currentKind() {
    return el.querySelector(`input[name="${name}"]:checked`)?.value ?? 'cron';
  }

  function value() {
    if (currentKind() === 'every') return { every: every.value.trim() };
    const zone = timezone.value.trim();
    return zone ? { cron: cron.value.trim(), timezone: zone } : { cron: cron.value.trim() };
  }

  let timer = null;
  let sequence = 0;
  function update() {
    const isEvery = currentKind() === 'every';
    everyPane.hidden = !isEvery;
    cronPane.hidden = isEvery;
    onChange && onChange(value());
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  async function refresh() {
    const schedule = value();
    const mine = ++sequence;
    try {
      const answer = await post('/schedules/preview', { schedule });
      if (mine !== sequence) return;
      fill(preview, fireTimes(answer.next, schedule.timezone));
      el.dataset.valid = 'true';
    } catch (error) {
      if (mine !== sequence) return;
      el.dataset.valid = 'false';
      fill(preview, h('div', { class: 'inline-error', role: 'alert' }, error.message));
    }
  }

  el.querySelector(`input[name="${name}"][value="${kind}"]`).checked = true;
  everyPane.hidden = kind !== 'every';
  cronPane.hidden = kind === 'every';
  refresh();
  return { el, value, refresh };
}

/** A list of fire times, in the schedule's zone (cron) and the browser's. */
export function fireTimes(times, timeZone) {
  if (!times.length) return h('div', { class: 'muted' }, 'No fire time.');
  return h(
    'ol',
    { class: 'fire-times' },
    times.map((iso) =>
      h(
        'li',
        { 'data-time': iso },
        h('span', { class: 'mono' }, timeZone ? zonedTime(iso, timeZone) : dateTime(iso)),
        timeZone ? h('span', { class: 'muted small' }, ` ${timeZone}`) : null,
        h('span', { class: 'muted small' }, ` · ${relative(iso)}`),
      ),
    ),
  );
}
