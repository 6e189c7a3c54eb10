// The workflow page: Function (code, Environment Properties, requirements, network exceptions), Hook or Schedule
// (with run now), Executions and Versions (with their build state).

import { del, get, patch, post } from '../api.js';
import { copyButton, fill, h } from '../dom.js';
import { dateTime, duration, relative } from '../format.js';
import { createEditor } from '../editor.js';
import { liveExecutions } from '../live.js';
import { navigate, scrollToHash, setLeaveGuard } from '../router.js';
import { fireTimes, scheduleEditor } from '../schedule.js';
import { card, enabledBadge, errorBox, loading, modeBadge, notice, pageHeader, statusBadge, toast } from '../ui.js';
import { buildLog, building, deployOutcome, noActiveVersion, settleVersion, versionBadge } from '../deploy.js';
import { deliveriesCard } from './deliveries.js';
import { alertsCard } from './alerts.js';
import { retriesCard } from './retries.js';

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
        class: 'btn needs-developer',
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
        class: 'btn btn-ghost btn-danger needs-developer',
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
        badges: [modeBadge(w.mode), h('span', { class: 'badge' }, w.runtime), w.version === null
            ? h('span', { class: 'badge build-failed', id: 'active-version', title: 'No version has deployed: the workflow does not run (its hook answers 503).' }, 'no active version')
            : h('span', { class: 'badge', id: 'active-version', title: `Version ${w.version} is active` }, `v${w.version}`), enabledBadge(w.enabled)],
        actions: [
          h('a', { href: `/workflows/${w.id}/trigger#run-now`, class: 'btn needs-developer' }, '▶ Run now'),
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
  const codeMessage = h('div', { class: 'code-message', id: 'deploy-result', 'aria-live': 'polite' });
  const state = h('span', { class: 'muted small', id: 'code-state' });
  const save = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'save-code', disabled: true }, 'Save & deploy');
  const propertiesBox = h('div', null, loading('Loading the properties…'));
  const requirementsBox = h('div', null, loading('Loading the requirements…'));
  const egressBox = h('div');
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
      h(
        'p',
        { class: 'muted small' },
        w.mode === 'catch' ? 'def workflow(_request, settings) runs on every call of the hook URL.' : 'def workflow(settings) runs on the schedule.',
        ' Saving deploys a new version: its requirements are installed and its module imported before it goes live, and a version that fails leaves the previous one serving. Ctrl+S (⌘S) saves.',
      ),
      codeMessage,
      codeBox,
    ),
    card('Environment Properties', h('p', { class: 'muted small' }, 'The ', h('code', null, 'settings'), ' dict your code receives. Secret values are never shown again after saving, and are masked in the captured output.'), propertiesBox),
    h('section', { class: 'card', id: 'requirements-card' }, h('h2', { class: 'card-title' }, 'Requirements'), requirementsBox),
    h('section', { class: 'card', id: 'egress-card' }, h('h2', { class: 'card-title' }, 'Network exceptions'), egressBox),
    retriesCard(page),
  );
  egressEditor(page, egressBox);

  // The latest version: what the editors show, and what a deploy changes (what is not sent is
  // carried over from it). It may not be the active one when its deploy failed.
  const versions = await get(`/workflows/${w.id}/versions`);
  if (!ctx.alive()) return;
  const latest = versions.versions[0] ?? null;
  let savedCode = latest ? latest.code : '';
  let savedRequirements = latest ? latest.requirements.join('\n') : '';
  let saving = false;
  let shown = 0; // The deploy whose result is shown: one deployed meanwhile replaces it.
  const lines = (text) => text.split('\n').map((line) => line.trim()).filter(Boolean).join('\n');
  const codeDirty = () => editor.get() !== savedCode;
  const requirementsDirty = () => lines(area.value) !== lines(savedRequirements);

  const area = h('textarea', {
    class: 'input mono requirements-input',
    id: 'requirements',
    rows: 4,
    placeholder: 'One requirement per line, e.g.\nrequests==2.32.3\npython-dateutil>=2.8',
    'aria-describedby': 'requirements-note',
    spellcheck: false,
    autocomplete: 'off',
  });
  area.value = savedRequirements;
  const requirementsMessage = h('div', { class: 'requirements-message', id: 'requirements-result', 'aria-live': 'polite' });
  const saveRequirements = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'save-requirements', disabled: true }, 'Save & deploy');
  const runtimeNote = h('span', null, 'the runtime’s environment');
  fill(
    requirementsBox,
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'pip requirements, one per line (as in requirements.txt)'), area),
    h(
      'p',
      { class: 'muted small', id: 'requirements-note' },
      'Installed into an environment of this version’s own when you deploy, on top of ',
      runtimeNote,
      '. Pin versions (',
      h('code', null, 'name==1.2.3'),
      ') so that every deploy gets the same packages. Comments are allowed; pip options (',
      h('code', null, '-r'),
      ', ',
      h('code', null, '--index-url'),
      '), paths and ',
      h('code', null, 'file:'),
      ' URLs are not.',
    ),
    requirementsMessage,
    h('div', { class: 'form-actions' }, saveRequirements),
  );
  get('/runtimes')
    .then((answer) => {
      const runtime = answer.runtimes.find((r) => r.name === page.workflow.runtime) ?? answer.runtimes.find((r) => r.default) ?? answer.runtimes[0];
      if (!runtime) return;
      const list = Object.entries(runtime.packages ?? {}).map(([name, version]) => `${name} ${version}`);
      runtimeNote.textContent = `Python ${runtime.version}${list.length ? ' with ' + list.join(', ') : ''}${runtime.installer ? `, with ${runtime.installer}` : ''}`;
    })
    .catch(() => {});

  fill(codeBox);
  const editor = createEditor(codeBox, { doc: savedCode, onChange: () => refreshState(), onSave: () => deploy(codeMessage) });
  area.addEventListener('input', () => {
    area.removeAttribute('aria-invalid');
    refreshState();
  });
  area.addEventListener('keydown', (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === 's') {
      event.preventDefault();
      deploy(requirementsMessage);
    }
  });
  page.addGuard(() => (codeDirty() || requirementsDirty() ? 'The code or the requirements have unsaved changes. Leave without deploying them?' : null));
  save.addEventListener('click', () => deploy(codeMessage));
  saveRequirements.addEventListener('click', () => deploy(requirementsMessage));

  function refreshState() {
    const changed = [codeDirty() && 'code', requirementsDirty() && 'requirements'].filter(Boolean);
    save.disabled = saveRequirements.disabled = saving || !changed.length;
    if (saving) state.textContent = 'Deploying…';
    else if (changed.length) state.textContent = `Unsaved changes (${changed.join(' and ')})`;
    else if (page.workflow.version === null) state.textContent = 'No version active';
    else state.textContent = `Version ${page.workflow.version} active`;
  }

  // The latest version did not go live (yet): say so where the deploy result goes.
  if (latest && latest.state === 'building') {
    showSettling(latest.version, codeMessage);
  } else if (latest && !latest.active) {
    fill(codeMessage, deployOutcome(latest, page.workflow));
  } else if (page.workflow.version === null) {
    fill(codeMessage, noActiveVersion(page.workflow));
  }
  refreshState();

  async function showSettling(n, where) {
    const mine = ++shown;
    fill(where, building(n));
    try {
      const version = await settleVersion(ctx, page.workflow.id, n);
      if (!version) return;
      page.setWorkflow(await get(`/workflows/${page.workflow.id}`));
      if (!ctx.alive() || mine !== shown) return;
      fill(where, deployOutcome(version, page.workflow));
    } catch (error) {
      if (mine === shown) fill(where, errorBox(error, { title: `The state of version ${n} could not be read` }));
    } finally {
      refreshState();
    }
  }

  /** Deploys what changed (code, requirements or both, in one PATCH); `where` shows the result. */
  async function deploy(where) {
    const sendCode = codeDirty();
    const sendRequirements = requirementsDirty();
    if ((!sendCode && !sendRequirements) || saving) return;
    saving = true;
    save.textContent = saveRequirements.textContent = 'Deploying…';
    refreshState();
    const code = editor.get();
    const requirementsText = area.value;
    const patchBody = {};
    if (sendCode) patchBody.code = code;
    if (sendRequirements) patchBody.requirements = requirementsText;
    shown += 1;
    fill(codeMessage);
    fill(requirementsMessage);
    let settling = null;
    try {
      // Answered once the version is stored; its build is then followed here.
      const updated = await patch(`/workflows/${page.workflow.id}?wait=false`, patchBody);
      savedCode = code;
      savedRequirements = requirementsText;
      editor.clearError();
      page.setWorkflow(updated);
      const deployment = updated.deployment;
      if (deployment.state === 'building') settling = showSettling(deployment.version, where);
      else fill(where, deployOutcome(deployment, page.workflow));
    } catch (error) {
      if (error.code === 'invalid_code') {
        const { line, column } = error.details;
        const at = line ? `Line ${line}, column ${column}: ` : '';
        if (line) editor.showError(line, column, error.message);
        fill(
          codeMessage,
          h(
            'div',
            { class: 'alert alert-error code-error', role: 'alert', 'data-line': line ?? '' },
            h('strong', null, at),
            error.message,
            h('div', { class: 'small' }, page.workflow.version === null ? 'Nothing was deployed.' : `Nothing was deployed: version ${page.workflow.version} keeps running.`),
          ),
        );
        editor.view.focus();
      } else if (error.code === 'invalid_request' && /requirement/i.test(error.message)) {
        area.setAttribute('aria-invalid', 'true');
        fill(requirementsMessage, errorBox(error, { title: 'The requirements were refused: nothing was deployed' }));
        area.focus();
      } else {
        fill(where, errorBox(error, { title: 'Nothing was deployed' }));
      }
    } finally {
      saving = false;
      save.textContent = saveRequirements.textContent = 'Save & deploy';
      refreshState();
    }
    await settling;
  }

  await propertiesEditor(ctx, page, propertiesBox);
}

// --- Network exceptions: the workflow's own egress_allow -----------------------------------------

/** Edits the destinations this workflow alone may reach although the egress policy refuses them. */
function egressEditor(page, box) {
  const entries = (text) => text.split('\n').map((line) => line.trim()).filter(Boolean);
  const saved = () => (page.workflow.egress_allow ?? []).join('\n');
  const area = h('textarea', {
    class: 'input mono egress-input',
    id: 'egress-allow',
    rows: 3,
    placeholder: 'One destination per line, e.g.\n10.20.0.5:5432\n10.20.0.0/24\ndb.internal:5432',
    'aria-describedby': 'egress-note',
    spellcheck: false,
    autocomplete: 'off',
  });
  area.value = saved();
  const message = h('div', { id: 'egress-result', 'aria-live': 'polite' });
  const save = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'save-egress', disabled: true }, 'Save exceptions');
  const dirty = () => entries(area.value).join('\n') !== entries(saved()).join('\n');
  fill(
    box,
    h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Destinations this workflow alone may connect to, one per line'), area),
    h(
      'p',
      { class: 'muted small', id: 'egress-note' },
      'By default workflows reach public addresses only: loopback, private and link-local addresses are refused. Each line opens one for this workflow (a network such as ',
      h('code', null, '10.20.0.0/24'),
      ', an address, ',
      h('code', null, 'address:port'),
      ' or ',
      h('code', null, 'host:port'),
      '), within what the server allows; the next execution runs with them.',
    ),
    message,
    h('div', { class: 'form-actions' }, save),
  );
  area.addEventListener('input', () => {
    area.removeAttribute('aria-invalid');
    save.disabled = !dirty();
  });
  page.addGuard(() => (dirty() ? 'The network exceptions have unsaved changes. Leave anyway?' : null));
  save.addEventListener('click', async () => {
    save.disabled = true;
    fill(message);
    try {
      page.setWorkflow(await patch(`/workflows/${page.workflow.id}`, { egress_allow: entries(area.value) }));
      area.value = saved();
      fill(message, h('div', { class: 'alert alert-success', role: 'status' }, 'Saved: the next execution runs with these exceptions.'));
    } catch (error) {
      area.setAttribute('aria-invalid', 'true');
      fill(message, errorBox(error, { title: 'The exceptions were refused: nothing changed' }));
    } finally {
      save.disabled = !dirty();
    }
  });
}

async function propertiesEditor(ctx, page, box) {
  let loaded = null;
  let rows = [];
  let dirty = false;
  const message = h('div', { 'aria-live': 'polite' });
  const tbody = h('tbody');
  const save = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'save-properties' }, 'Save properties');
  const add = h('button', { type: 'button', class: 'btn needs-developer', id: 'add-property' }, '+ Add property');
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
        const remove = h('button', { type: 'button', class: 'btn btn-ghost btn-small needs-developer', 'aria-label': `Delete ${row.key}`, title: 'Delete' }, '✕');
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

// --- Hook (catch) or Schedule (pull), and run now -----------------------------------------------

async function triggerTab(ctx, page, body) {
  const w = page.workflow;
  if (w.mode === 'catch') {
    const hookBox = h('div');
    const drawHook = () => {
      const url = `${location.origin}${page.workflow.hook_url}`;
      const curl = `curl -X POST '${url}' \\\n  -H 'Content-Type: application/json' \\\n  -d '{"name": "ada"}'`;
      const rotate = h('button', { type: 'button', class: 'btn btn-small btn-ghost needs-developer' }, 'Rotate token');
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
        page.workflow.version === null ? noActiveVersion(page.workflow) : null,
        h('div', { class: 'field-label spaced' }, 'Try it with curl'),
        h('div', { class: 'code-block' }, h('pre', { id: 'curl-example' }, curl), copyButton(() => curl)),
        h('p', { class: 'muted small' }, 'Every answer carries an ', h('code', null, 'X-Execution-Id'), ' header: the execution appears under Executions.'),
      );
    };
    drawHook();
    page.onEnabledChange = drawHook;
    const request = h('textarea', { class: 'input mono', rows: 6, id: 'run-request', 'aria-label': 'Request JSON', spellcheck: false }, '{\n  "name": "ada"\n}');
    fill(body, card('Hook URL', hookBox), deliveriesCard(page), runNow(ctx, page, { request }));
  } else {
    const current = h('div', null, loading());
    const editor = scheduleEditor(w.schedule);
    const message = h('div');
    const save = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'save-schedule' }, 'Save schedule');
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
    fill(body, page.workflow.version === null ? noActiveVersion(page.workflow) : null, card('Schedule', current), card('Change the schedule', editor.el, message, h('div', { class: 'form-actions' }, save)), runNow(ctx, page, {}));
    await loadCurrent();
  }
  scrollToHash();
}

function runNow(ctx, page, { request }) {
  const result = h('div', { class: 'run-result', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', class: 'btn btn-primary needs-developer', id: 'run-button' }, '▶ Run now');
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
  fill(
    body,
    liveExecutions(ctx, { base: `/workflows/${page.workflow.id}/executions`, empty: page.workflow.mode === 'catch' ? 'No executions yet: call the hook URL or run it now.' : 'No executions yet: wait for the schedule or run it now.' }),
    alertsCard(page),
  );
}

async function versionsTab(ctx, page, body) {
  fill(body, loading());
  const list = h('div', { class: 'versions' });
  const banner = h('div', { 'aria-live': 'polite' });
  const waiting = new Set();
  let sequence = 0;

  async function refresh() {
    const mine = ++sequence;
    let answer;
    try {
      const [versions, workflow] = await Promise.all([get(`/workflows/${page.workflow.id}/versions`), get(`/workflows/${page.workflow.id}`)]);
      answer = versions;
      if (!ctx.alive() || mine !== sequence) return;
      page.setWorkflow(workflow);
    } catch (error) {
      if (ctx.alive()) fill(list, errorBox(error, { title: 'The versions could not be loaded', retry: refresh }));
      return;
    }
    draw(answer.versions);
    // Versions still building: wait for each to settle, then show the list again.
    for (const version of answer.versions) {
      if (version.state !== 'building' || waiting.has(version.version)) continue;
      waiting.add(version.version);
      settleVersion(ctx, page.workflow.id, version.version)
        .then((settled) => {
          waiting.delete(version.version);
          if (settled && ctx.alive()) refresh();
        })
        .catch(() => waiting.delete(version.version));
    }
  }

  function draw(versions) {
    fill(banner, page.workflow.version === null ? noActiveVersion(page.workflow) : null);
    fill(list, versions.length ? versions.map(versionItem) : h('div', { class: 'empty' }, 'No version yet.'));
  }

  function versionItem(version) {
    const codeBox = h('div', { class: 'version-code', hidden: true });
    let shown = false;
    const view = h('button', { type: 'button', class: 'btn btn-small', 'aria-expanded': 'false' }, 'View code');
    view.addEventListener('click', () => {
      if (!shown) {
        createEditor(codeBox, { doc: version.code, readOnly: true, maxHeight: '50vh' });
        shown = true;
      }
      codeBox.hidden = !codeBox.hidden;
      view.setAttribute('aria-expanded', String(!codeBox.hidden));
      view.textContent = codeBox.hidden ? 'View code' : 'Hide code';
    });
    const restore =
      version.active || version.state === 'building'
        ? null
        : h(
            'button',
            {
              type: 'button',
              class: 'btn btn-small needs-developer',
              title: 'Deploy this version’s code and requirements again, as a new version',
              onclick: async (event) => {
                if (!window.confirm(`Deploy the code and requirements of version ${version.version} again, as a new version?`)) return;
                event.target.disabled = true;
                try {
                  const updated = await patch(`/workflows/${page.workflow.id}?wait=false`, { code: version.code, requirements: version.requirements });
                  page.setWorkflow(updated);
                  toast(updated.deployment.state === 'building' ? `Deploying as version ${updated.deployment.version}…` : `Version ${updated.deployment.version}: ${updated.deployment.state}`);
                  refresh();
                } catch (error) {
                  toast(`${error.code}: ${error.message}`);
                  event.target.disabled = false;
                }
              },
            },
            'Deploy again',
          );
    const requirements = version.requirements.length
      ? h('ul', { class: 'requirement-list' }, version.requirements.map((line) => h('li', null, h('code', null, line))))
      : h('span', { class: 'muted' }, 'none');
    const environment = version.environment
      ? h('code', { class: 'environment-id' }, version.environment)
      : h('span', { class: 'muted' }, !version.requirements.length ? `the runtime’s (${page.workflow.runtime})` : version.state === 'building' ? 'being built' : 'not built');
    return h(
      'div',
      { class: ['version', `version-${version.state}`, version.active && 'version-active'], 'data-version': version.version, 'data-state': version.state },
      h(
        'div',
        { class: 'version-row' },
        h('strong', null, `Version ${version.version}`),
        versionBadge(version.state),
        h('span', { class: 'muted small', title: dateTime(version.created_at) }, `deployed ${dateTime(version.created_at)} · ${relative(version.created_at)}`),
        h('span', { class: 'version-actions' }, view, restore),
      ),
      h(
        'dl',
        { class: 'version-facts' },
        h('div', null, h('dt', null, 'Requirements'), h('dd', { class: 'version-requirements' }, requirements)),
        h('div', null, h('dt', null, 'Environment'), h('dd', { class: 'version-environment' }, environment)),
      ),
      version.state === 'building'
        ? building(version.version)
        : version.state === 'failed'
          ? h('div', { class: 'alert alert-error version-error' }, h('div', { class: 'deploy-error mono' }, version.error ?? 'the build failed'), buildLog(version.build_log))
          : buildLog(version.build_log),
      codeBox,
    );
  }

  fill(
    body,
    banner,
    card(
      'Versions',
      h(
        'p',
        { class: 'muted small' },
        'Every deployed change of the code or the requirements is a version; each execution records the version it ran. A version is built (its requirements installed) and its module imported before it goes live: ',
        versionBadge('active'),
        ' serves, ',
        versionBadge('ready'),
        ' passed and can be deployed again, ',
        versionBadge('failed'),
        ' never served (the previous version kept serving), ',
        versionBadge('building'),
        ' is on its way.',
      ),
      list,
    ),
  );
  fill(list, loading());
  await refresh();
}
