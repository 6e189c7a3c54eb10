// The workflow page: Function (code, Environment Properties, requirements), Hook or Schedule
// (with run now), Executions and Versions.

import { del, get, patch, post } from '../api.js';
import { copyButton, fill, h } from '../dom.js';
import { dateTime, duration, relative } from '../format.js';
import { createEditor } from '../editor.js';
import { liveExecutions } from '../live.js';
import { navigate, scrollToHash, setLeaveGuard } from '../router.js';
import { fireTimes, scheduleEditor } from '../schedule.js';
import { card, enabledBadge, errorBox, loading, modeBadge, notice, pageHeader, statusBadge, toast } from '../ui.js';

const MASK = '****';

export async function workflowPage(ctx) {
  const { main, params } = ctx;
  const tab = params.tab ?? 'code';
  const id = params.id;
  const page = { workflow: await get(`/workflows/${encodeURIComponent(id)}`), guards: [] };
  if (!ctx.alive()) return;
  const header = h('div');
  const body = h('div', { class: 'tab-body' });

  page.setWorkflow = (workflow) => {
    page.workflow = workflow;
    drawHeader();
  };
  page.addGuard = (fn) => {
    page.guards.push(fn);
    setLeaveGuard(() => page.guards.map((g) => g()).find(Boolean) ?? null);
  };

  function drawHeader() {
    const w = page.workflow;
    ctx.setTitle(w.name);
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'btn',
        id: 'toggle-enabled',
        onclick: async () => {
          toggle.disabled = true;
          try {
            page.setWorkflow(await patch(`/workflows/${w.id}`, { enabled: !w.enabled }));
            toast(page.workflow.enabled ? 'Resumed' : 'Paused');
            page.onEnabledChange && page.onEnabledChange();
          } catch (error) {
            toast(`${error.code}: ${error.message}`);
          } finally {
            toggle.disabled = false;
          }
        },
      },
      w.enabled ? 'Pause' : 'Resume',
    );
    const remove = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-ghost btn-danger',
        onclick: async () => {
          if (!window.confirm(`Delete the workflow ${w.name}, its versions, settings and executions? This cannot be undone.`)) return;
          try {
            await del(`/workflows/${w.id}`);
            page.guards = [];
            setLeaveGuard(null);
            toast(`Deleted ${w.name}`);
            navigate('/workflows');
          } catch (error) {
            toast(`${error.code}: ${error.message}`);
          }
        },
      },
      'Delete',
    );
    const tabLink = (name, label) =>
      h('a', { href: name === 'code' ? `/workflows/${w.id}` : `/workflows/${w.id}/${name}`, class: ['tab', tab === name && 'active'], 'aria-current': tab === name ? 'page' : null }, label);
    fill(
      header,
      pageHeader(w.name, {
        crumbs: [h('a', { href: '/workflows' }, 'Workflows')],
        badges: [modeBadge(w.mode), h('span', { class: 'badge' }, w.runtime), h('span', { class: 'badge', id: 'active-version' }, `v${w.version}`), enabledBadge(w.enabled)],
        actions: [
          h('a', { href: `/workflows/${w.id}/trigger#run-now`, class: 'btn' }, '▶ Run now'),
          toggle,
          remove,
        ],
      }),
      h(
        'nav',
        { class: 'tabs', 'aria-label': 'Workflow sections' },
        tabLink('code', 'Function'),
        tabLink('trigger', w.mode === 'catch' ? 'Hook' : 'Schedule'),
        tabLink('executions', 'Executions'),
        tabLink('versions', 'Versions'),
      ),
    );
  }

  drawHeader();
  fill(main, header, body);
  const tabs = { code: functionTab, trigger: triggerTab, executions: executionsTab, versions: versionsTab };
  if (!tabs[tab]) {
    fill(body, errorBox({ status: 404, code: 'not_found', message: `This workflow has no “${tab}” section.` }, { title: 'Page not found' }));
    return;
  }
  await tabs[tab](ctx, page, body);
}

// --- Function: code, properties, requirements ---------------------------------------------------

async function functionTab(ctx, page, body) {
  const w = page.workflow;
  const codeBox = h('div', { class: 'editor-box' }, loading('Loading the code…'));
  const codeMessage = h('div', { class: 'code-message', 'aria-live': 'polite' });
  const state = h('span', { class: 'muted small', id: 'code-state' });
  const save = h('button', { type: 'button', class: 'btn btn-primary', id: 'save-code', disabled: true }, 'Save & deploy');
  const propertiesBox = h('div', null, loading('Loading the properties…'));
  const requirementsBox = h('div');
  fill(
    body,
    h(
      'section',
      { class: 'card' },
      h(
        'div',
        { class: 'card-head' },
        h('h2', { class: 'card-title' }, 'Code'),
        h('span', { class: 'card-head-side' }, state, save),
      ),
      h('p', { class: 'muted small' }, w.mode === 'catch' ? 'def workflow(_request, settings) runs on every call of the hook URL.' : 'def workflow(settings) runs on the schedule.', ' Saving deploys a new version after checking that the code compiles; Ctrl+S (⌘S) saves.'),
      codeMessage,
      codeBox,
    ),
    card('Environment Properties', h('p', { class: 'muted small' }, 'The ', h('code', null, 'settings'), ' dict your code receives. Secret values are never shown again after saving, and are masked in the captured output.'), propertiesBox),
    card('Requirements', requirementsBox),
  );

  // The code of the active version.
  const versions = await get(`/workflows/${w.id}/versions`);
  if (!ctx.alive()) return;
  const active = versions.versions.find((v) => v.active) ?? versions.versions[0];
  let saved = active ? active.code : '';
  let dirty = false;
  let saving = false;
  fill(codeBox);
  const editor = createEditor(codeBox, {
    doc: saved,
    onChange: (code) => {
      dirty = code !== saved;
      save.disabled = !dirty || saving;
      state.textContent = dirty ? 'Unsaved changes' : `Version ${page.workflow.version} deployed`;
    },
    onSave: () => deploy(),
  });
  state.textContent = `Version ${page.workflow.version} deployed`;
  page.addGuard(() => (dirty ? 'The code has unsaved changes. Leave without deploying them?' : null));
  save.addEventListener('click', () => deploy());

  async function deploy() {
    if (!dirty || saving) return;
    saving = true;
    save.disabled = true;
    save.textContent = 'Deploying…';
    const code = editor.get();
    try {
      const updated = await patch(`/workflows/${page.workflow.id}`, { code });
      saved = code;
      dirty = editor.get() !== saved;
      editor.clearError();
      page.setWorkflow(updated);
      state.textContent = `Version ${updated.version} deployed`;
      fill(codeMessage, notice('success', `Deployed version ${updated.version}.`));
    } catch (error) {
      if (error.code === 'invalid_code') {
        const { line, column } = error.details;
        const where = line ? `Line ${line}, column ${column}: ` : '';
        if (line) editor.showError(line, column, error.message);
        fill(
          codeMessage,
          h(
            'div',
            { class: 'alert alert-error code-error', role: 'alert', 'data-line': line ?? '' },
            h('strong', null, where),
            error.message,
            h('div', { class: 'small' }, `Nothing was deployed: version ${page.workflow.version} keeps running.`),
          ),
        );
        editor.view.focus();
      } else {
        fill(codeMessage, errorBox(error, { title: 'The code was not deployed' }));
      }
    } finally {
      saving = false;
      save.textContent = 'Save & deploy';
      save.disabled = !dirty;
    }
  }

  await propertiesEditor(ctx, page, propertiesBox);
  requirements(requirementsBox);
}

async function propertiesEditor(ctx, page, box) {
  let loaded = null;
  let rows = [];
  let dirty = false;
  const message = h('div', { 'aria-live': 'polite' });
  const tbody = h('tbody');
  const save = h('button', { type: 'button', class: 'btn btn-primary', id: 'save-properties' }, 'Save properties');
  const add = h('button', { type: 'button', class: 'btn', id: 'add-property' }, '+ Add property');
  page.addGuard(() => (dirty ? 'The Environment Properties have unsaved changes. Leave anyway?' : null));

  async function load() {
    loaded = await get(`/workflows/${page.workflow.id}/settings`);
    rows = Object.entries(loaded.settings).map(([key, value]) => {
      const secret = loaded.secrets.includes(key);
      const masked = secret && value === MASK;
      return {
        key,
        existing: true,
        secret,
        masked,
        json: !masked && typeof value !== 'string',
        text: masked ? '' : typeof value === 'string' ? value : JSON.stringify(value),
        original: value,
      };
    });
    dirty = false;
    draw();
  }

  function markDirty() {
    dirty = true;
  }

  function draw() {
    fill(
      tbody,
      rows.map((row, index) => {
        const key = h('input', { class: 'input mono', value: row.key, placeholder: 'KEY', 'aria-label': 'Key', readonly: row.existing, title: row.existing ? 'To rename a property, delete it and add a new one' : null, spellcheck: false });
        key.addEventListener('input', () => {
          row.key = key.value;
          markDirty();
        });
        const value = h('input', {
          class: 'input mono',
          type: row.secret ? 'password' : 'text',
          value: row.text,
          placeholder: row.masked ? '•••••••• (unchanged)' : row.json ? 'JSON value' : 'value',
          'aria-label': `Value of ${row.key || 'the new property'}`,
          autocomplete: 'off',
          spellcheck: false,
        });
        value.addEventListener('input', () => {
          row.text = value.value;
          markDirty();
        });
        const json = h('input', { type: 'checkbox', checked: row.json, 'aria-label': 'JSON value' });
        json.addEventListener('change', () => {
          row.json = json.checked;
          value.placeholder = row.masked ? '•••••••• (unchanged)' : row.json ? 'JSON value' : 'value';
          markDirty();
        });
        const secret = h('input', { type: 'checkbox', checked: row.secret, 'aria-label': 'Secret', class: 'secret-toggle' });
        secret.addEventListener('change', () => {
          row.secret = secret.checked;
          value.type = row.secret ? 'password' : 'text';
          markDirty();
        });
        const remove = h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'aria-label': `Delete ${row.key}`, title: 'Delete' }, '✕');
        remove.addEventListener('click', () => {
          rows.splice(index, 1);
          markDirty();
          draw();
        });
        return h(
          'tr',
          { class: row.masked ? 'masked' : null },
          h('td', { 'data-label': 'Key' }, key),
          h('td', { 'data-label': 'Value' }, value),
          h('td', { 'data-label': 'JSON', class: 'center' }, h('label', { class: 'check' }, json, h('span', { class: 'check-label' }, 'JSON'))),
          h('td', { 'data-label': 'Secret', class: 'center' }, h('label', { class: 'check' }, secret, h('span', { class: 'check-label' }, 'secret'))),
          h('td', { class: 'center' }, remove),
        );
      }),
    );
    if (!rows.length) fill(tbody, h('tr', null, h('td', { colspan: 5, class: 'muted empty-row' }, 'No property yet.')));
  }

  add.addEventListener('click', () => {
    rows.push({ key: '', existing: false, secret: false, masked: false, json: false, text: '', original: undefined });
    markDirty();
    draw();
    const inputs = tbody.querySelectorAll('tr:last-child input');
    inputs[0] && inputs[0].focus();
  });

  save.addEventListener('click', async () => {
    fill(message);
    const changes = {};
    const keys = new Set();
    try {
      for (const row of rows) {
        const key = row.key.trim();
        if (!key) throw new Error('Every property needs a key.');
        if (keys.has(key)) throw new Error(`The key ${key} is there twice.`);
        keys.add(key);
        if (row.masked && row.text === '') continue; // A secret left as it is keeps its value.
        let value = row.text;
        if (row.json) {
          try {
            value = JSON.parse(row.text);
          } catch {
            throw new Error(`The value of ${key} is not valid JSON (untick “JSON” for a plain text value).`);
          }
        }
        if (row.existing && JSON.stringify(value) === JSON.stringify(row.original)) continue;
        changes[key] = value;
      }
    } catch (error) {
      fill(message, notice('error', error.message));
      return;
    }
    for (const key of Object.keys(loaded.settings)) if (!keys.has(key)) changes[key] = null;
    const rowKeys = new Set(rows.map((r) => r.key.trim()));
    const secrets = rows.filter((r) => r.secret).map((r) => r.key.trim());
    // Secret keys that name no property are kept unless their property was just deleted.
    for (const key of loaded.secrets) if (!rowKeys.has(key) && !(key in loaded.settings)) secrets.push(key);
    const secretsChanged = secrets.length !== loaded.secrets.length || secrets.some((k) => !loaded.secrets.includes(k));
    save.disabled = true;
    try {
      // Secrets first, so that a new secret value is never answered unmasked.
      if (secretsChanged) page.setWorkflow(await patch(`/workflows/${page.workflow.id}`, { secrets }));
      if (Object.keys(changes).length) await patch(`/workflows/${page.workflow.id}/settings`, { settings: changes });
      await load();
      fill(message, notice('success', 'Properties saved.'));
    } catch (error) {
      fill(message, errorBox(error, { title: 'The properties were not saved' }));
    } finally {
      save.disabled = false;
    }
  });

  fill(
    box,
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'table properties' },
        h('thead', null, h('tr', null, h('th', null, 'Key'), h('th', null, 'Value'), h('th', { class: 'center' }, 'JSON'), h('th', { class: 'center' }, 'Secret'), h('th', null, ''))),
        tbody,
      ),
    ),
    message,
    h('div', { class: 'form-actions' }, add, save),
  );
  try {
    await load();
  } catch (error) {
    fill(box, errorBox(error, { title: 'The properties could not be loaded' }));
  }
}

function requirements(box) {
  const area = h('textarea', { class: 'input mono', rows: 3, disabled: true, placeholder: 'One requirement per line, e.g. requests==2.32.3', 'aria-label': 'Requirements', id: 'requirements' });
  const packages = h('span', { class: 'muted' }, '…');
  fill(
    box,
    area,
    h(
      'p',
      { class: 'muted small', id: 'requirements-note' },
      'Not available yet: flowd does not install per-workflow requirements. Every workflow runs in the server’s shared environment, which provides ',
      packages,
      '.',
    ),
  );
  get('/runtimes')
    .then((answer) => {
      const runtime = answer.runtimes.find((r) => r.default) ?? answer.runtimes[0];
      const list = Object.entries(runtime?.packages ?? {}).map(([name, version]) => `${name} ${version}`);
      packages.textContent = `Python ${runtime.version}${list.length ? ' with ' + list.join(', ') : ''}`;
    })
    .catch(() => (packages.textContent = 'the packages of the runtime'));
}

// --- Hook (catch) or Schedule (pull), and run now -----------------------------------------------

async function triggerTab(ctx, page, body) {
  const w = page.workflow;
  if (w.mode === 'catch') {
    const hookBox = h('div');
    const drawHook = () => {
      const url = `${location.origin}${page.workflow.hook_url}`;
      const curl = `curl -X POST '${url}' \\\n  -H 'Content-Type: application/json' \\\n  -d '{"name": "ada"}'`;
      const rotate = h('button', { type: 'button', class: 'btn btn-small btn-ghost' }, 'Rotate token');
      rotate.addEventListener('click', async () => {
        if (!window.confirm('Give the hook a new URL? The current URL stops working at once.')) return;
        try {
          page.setWorkflow(await post(`/workflows/${page.workflow.id}/rotate-token`));
          drawHook();
          toast('New hook URL');
        } catch (error) {
          toast(`${error.code}: ${error.message}`);
        }
      });
      fill(
        hookBox,
        h('p', { class: 'muted small' }, 'POST JSON, a form or a multipart upload to this URL; the body, headers and query string reach your code as ', h('code', null, '_request'), '. Keep it secret: anyone with the URL can call the workflow.'),
        h('div', { class: 'copy-row' }, h('input', { class: 'input mono', readonly: true, value: url, id: 'hook-url', 'aria-label': 'Hook URL', onclick: (e) => e.target.select() }), copyButton(() => url), rotate),
        page.workflow.enabled ? null : notice('warning', 'The workflow is paused: its hook answers 503 until you resume it.'),
        h('div', { class: 'field-label spaced' }, 'Try it with curl'),
        h('div', { class: 'code-block' }, h('pre', { id: 'curl-example' }, curl), copyButton(() => curl)),
        h('p', { class: 'muted small' }, 'Every answer carries an ', h('code', null, 'X-Execution-Id'), ' header: the execution appears under Executions.'),
      );
    };
    drawHook();
    page.onEnabledChange = drawHook;
    const request = h('textarea', { class: 'input mono', rows: 6, id: 'run-request', 'aria-label': 'Request JSON', spellcheck: false }, '{\n  "name": "ada"\n}');
    fill(body, card('Hook URL', hookBox), runNow(ctx, page, { request }));
  } else {
    const current = h('div', null, loading());
    const editor = scheduleEditor(w.schedule);
    const message = h('div');
    const save = h('button', { type: 'button', class: 'btn btn-primary', id: 'save-schedule' }, 'Save schedule');
    const loadCurrent = async () => {
      try {
        const answer = await get(`/workflows/${page.workflow.id}/schedule`);
        const s = answer.schedule;
        fill(
          current,
          h('p', null, 'Runs ', s.every ? h('strong', null, `every ${s.every}`) : [h('code', { class: 'strong' }, s.cron), ' in ', h('strong', null, s.timezone)], '.'),
          answer.enabled
            ? [h('div', { class: 'preview-title' }, 'Next five fire times'), h('div', { id: 'next-fire-times' }, fireTimes(answer.next, s.timezone))]
            : notice('warning', 'Paused: no run is scheduled until you resume the workflow.'),
        );
      } catch (error) {
        fill(current, errorBox(error, { title: 'The schedule could not be loaded' }));
      }
    };
    save.addEventListener('click', async () => {
      save.disabled = true;
      fill(message);
      try {
        page.setWorkflow(await patch(`/workflows/${page.workflow.id}`, { schedule: editor.value() }));
        fill(message, notice('success', 'Schedule saved.'));
        await loadCurrent();
      } catch (error) {
        fill(message, errorBox(error, { title: 'The schedule was not saved' }));
      } finally {
        save.disabled = false;
      }
    });
    page.onEnabledChange = loadCurrent;
    fill(body, card('Schedule', current), card('Change the schedule', editor.el, message, h('div', { class: 'form-actions' }, save)), runNow(ctx, page, {}));
    await loadCurrent();
  }
  scrollToHash();
}

function runNow(ctx, page, { request }) {
  const result = h('div', { class: 'run-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', class: 'btn btn-primary', id: 'run-button' }, '▶ Run now');
  button.addEventListener('click', async () => {
    let body = {};
    if (request) {
      try {
        const parsed = JSON.parse(request.value || '{}');
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        body = { request: parsed };
      } catch (error) {
        fill(result, notice('error', `The request must be a JSON object (${error.message}).`));
        return;
      }
    }
    button.disabled = true;
    button.textContent = 'Running…';
    fill(result, loading('Running…'));
    try {
      const execution = await post(`/workflows/${page.workflow.id}/runs`, body);
      if (!ctx.alive()) return;
      fill(
        result,
        h(
          'div',
          { class: 'run-summary' },
          statusBadge(execution.status),
          execution.response_status ? h('span', null, ` HTTP ${execution.response_status}`) : null,
          h('span', { class: 'muted' }, ` · ${duration(execution.duration_ms)} · version ${execution.version} · `),
          h('a', { href: `/executions/${execution.id}` }, 'Open the execution →'),
        ),
        execution.error ? h('pre', { class: 'output error-output' }, `${execution.error.type}: ${execution.error.message}`) : null,
        execution.logs ? h('pre', { class: 'output' }, execution.logs) : h('p', { class: 'muted small' }, 'No output.'),
      );
    } catch (error) {
      fill(result, errorBox(error, { title: 'The run did not start' }));
    } finally {
      button.disabled = false;
      button.textContent = '▶ Run now';
    }
  });
  return h(
    'section',
    { class: 'card', id: 'run-now' },
    h('h2', { class: 'card-title' }, 'Run now'),
    request
      ? [h('p', { class: 'muted small' }, 'Runs the deployed version with this JSON object as ', h('code', null, '_request'), ' (trigger “manual”).'), request]
      : h('p', { class: 'muted small' }, 'Runs the deployed version once, now (trigger “manual”). Runs never overlap: it is refused while another run is going.'),
    h('div', { class: 'form-actions' }, button),
    result,
  );
}

// --- Executions and versions ----------------------------------------------------------------------

async function executionsTab(ctx, page, body) {
  fill(body, liveExecutions(ctx, { base: `/workflows/${page.workflow.id}/executions`, empty: page.workflow.mode === 'catch' ? 'No executions yet: call the hook URL or run it now.' : 'No executions yet: wait for the schedule or run it now.' }));
}

async function versionsTab(ctx, page, body) {
  fill(body, loading());
  const answer = await get(`/workflows/${page.workflow.id}/versions`);
  if (!ctx.alive()) return;
  const list = h('div', { class: 'versions' });
  for (const version of answer.versions) {
    const codeBox = h('div', { class: 'version-code', hidden: true });
    let shown = false;
    const view = h('button', { type: 'button', class: 'btn btn-small' }, 'View code');
    view.addEventListener('click', () => {
      if (!shown) {
        createEditor(codeBox, { doc: version.code, readOnly: true, maxHeight: '50vh' });
        shown = true;
      }
      codeBox.hidden = !codeBox.hidden;
      view.textContent = codeBox.hidden ? 'View code' : 'Hide code';
    });
    const restore = version.active
      ? null
      : h(
          'button',
          {
            type: 'button',
            class: 'btn btn-small',
            onclick: async (event) => {
              if (!window.confirm(`Deploy the code of version ${version.version} again, as a new version?`)) return;
              event.target.disabled = true;
              try {
                const updated = await patch(`/workflows/${page.workflow.id}`, { code: version.code });
                page.setWorkflow(updated);
                toast(`Deployed as version ${updated.version}`);
                versionsTab(ctx, page, body);
              } catch (error) {
                toast(`${error.code}: ${error.message}`);
                event.target.disabled = false;
              }
            },
          },
          'Deploy again',
        );
    list.append(
      h(
        'div',
        { class: ['version', version.active && 'version-active'] },
        h(
          'div',
          { class: 'version-row' },
          h('strong', null, `Version ${version.version}`),
          version.active ? h('span', { class: 'badge state-active' }, 'active') : null,
          h('span', { class: 'badge build-ready', title: 'Checked when deployed: the code compiles and defines workflow() with the right parameters. flowd has no per-workflow requirements to build.' }, 'ready'),
          h('span', { class: 'muted small', title: dateTime(version.created_at) }, `deployed ${dateTime(version.created_at)} · ${relative(version.created_at)}`),
          h('span', { class: 'version-actions' }, view, restore),
        ),
        codeBox,
      ),
    );
  }
  fill(body, card('Versions', h('p', { class: 'muted small' }, 'Every deployed change of the code is a version; each execution records the version it ran. A version is “ready” once its code passed the checks at deploy.'), list));
}
