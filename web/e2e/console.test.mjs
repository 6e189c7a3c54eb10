// End-to-end test of the web console in headless Chromium, against a running flowd:
//
//   node web/e2e/console.test.mjs <base-url> <admin-api-key>
//
// Run by crates/flowd-server/tests/it/e2e_console.rs (which starts flowd). Exits 0 when every
// step passed. FLOWD_SCREENSHOTS=1 also writes docs/screenshots/*.png; FLOWD_CHROMIUM names
// another Chromium binary (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [base, adminKey] = process.argv.slice(2);
if (!base || !adminKey) {
  console.error('usage: node web/e2e/console.test.mjs <base-url> <admin-api-key>');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const screenshots = process.env.FLOWD_SCREENSHOTS === '1' ? path.resolve(here, '../../docs/screenshots') : null;
const executablePath = process.env.FLOWD_CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT = 30_000;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-e2e-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1280, height: 860 },
  deviceScaleFactor: 1,
  timezoneId: 'UTC',
  locale: 'en-GB',
});
context.setDefaultTimeout(STEP_TIMEOUT);
const page = context.pages()[0] ?? (await context.newPage());
const pageErrors = [];
page.on('pageerror', (error) => pageErrors.push(error.message));
page.on('console', (message) => {
  if (message.type() === 'error' && !/401|Unauthorized|404|Not Found|409|422|Unprocessable/.test(message.text())) pageErrors.push(`console: ${message.text()}`);
});

let stepName = '';
let passed = 0;
async function step(name, fn) {
  stepName = name;
  const started = Date.now();
  await fn();
  passed += 1;
  console.log(`ok ${passed} - ${name} (${Date.now() - started} ms)`);
}

async function shot(name, { top = true, fullPage = false } = {}) {
  if (!screenshots) return;
  fs.mkdirSync(screenshots, { recursive: true });
  if (top) await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(250);
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage });
  console.log(`   screenshot docs/screenshots/${name}.png`);
}

/** Replaces the whole content of the CodeMirror editor by `code`, as typed text. */
async function setCode(code) {
  const content = page.locator('.cm-content').first();
  await content.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(code);
}

async function api(method, apiPath, body) {
  const response = await fetch(`${base}/api/v1${apiPath}`, {
    method,
    headers: { Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

const BROKEN = `import json


def workflow(_request, settings)
    return {"status_code": 200, "body": "never"}
`;

const GREET = `import json


def workflow(_request, settings):
    name = _request.get("name", "world")
    print(f"hello {name}, token {settings['API_TOKEN']}")
    settings["calls"] = settings.get("calls", 0) + 1
    return {
        "status_code": 201,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"hello": name, "calls": settings["calls"]}),
    }
`;

const DATES = `import dateutil


def workflow(_request, settings):
    return {"status_code": 200, "body": dateutil.__version__}
`;

try {
  await step('a wrong API key is refused on the sign-in page, with the API error', async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(/\/sign-in/);
    await page.fill('#api-key', 'not-a-valid-key');
    await page.click('button[type=submit]');
    const alert = page.locator('.signin-message .alert-error');
    await alert.waitFor();
    const text = await alert.innerText();
    assert.match(text, /401 unauthorized/);
    assert.match(text, /valid API key is required/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('flowd.apiKey')), null);
  });

  await step('signing in with the admin key opens the empty workflows list', async () => {
    await shot('sign-in');
    await page.fill('#api-key', adminKey);
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/workflows`);
    await page.getByText('No workflows yet.').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('flowd.apiKey')), adminKey);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing kept beyond the session');
  });

  let greetId;
  await step('create a catch workflow: it starts from the catch template', async () => {
    await page.click('#create-workflow');
    await page.waitForURL(`${base}/workflows/new`);
    await page.check('input[name=mode][value=catch]');
    await page.fill('#workflow-name', 'greet');
    await page.click('button[type=submit]');
    await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
    greetId = page.url().split('/').pop();
    await page.locator('.cm-content').getByText('def workflow(_request, settings):').waitFor();
    assert.equal(await page.locator('h1').innerText(), 'greet');
    assert.equal(await page.locator('#active-version').innerText(), 'v1');
    // A real editor: line numbers and Python highlighting.
    assert.ok((await page.locator('.cm-lineNumbers .cm-gutterElement').count()) > 10);
    const keyword = page.locator('.cm-line span', { hasText: /^def$/ }).first();
    const color = await keyword.evaluate((el) => getComputedStyle(el).color);
    assert.notEqual(color, 'rgb(0, 0, 0)', 'def is highlighted');
    // The template works as it is.
    const run = await api('POST', `/workflows/${greetId}/runs`, { request: { name: 'template' } });
    assert.equal(run.body.status, 'success', JSON.stringify(run.body));
    assert.equal(run.body.response_status, 200);
    assert.match(run.body.logs, /called for template/);
  });

  await step('Tab indents and Ctrl+Z undoes in the editor', async () => {
    const before = await page.locator('.cm-content').innerText();
    await page.locator('.cm-line').nth(3).click();
    await page.keyboard.press('Home');
    await page.keyboard.press('Tab');
    const indented = await page.locator('.cm-line').nth(3).innerText();
    assert.match(indented, /^ {4}/, 'Tab indents by four spaces');
    await page.keyboard.press('Control+Z');
    assert.equal(await page.locator('.cm-content').innerText(), before);
  });

  await step('saving code with a syntax error shows the error at its line, nothing is deployed', async () => {
    await setCode(BROKEN);
    await page.click('#save-code');
    const banner = page.locator('.code-error');
    await banner.waitFor();
    const text = await banner.innerText();
    assert.match(text, /Line 4, column \d+/);
    assert.match(text, /SyntaxError/);
    assert.equal(await banner.getAttribute('data-line'), '4');
    // The editor marks line 4 (gutter marker and underlined range).
    await page.locator('.cm-lint-marker-error').first().waitFor();
    const markedLine = await page.locator('.cm-lintRange-error, .cm-lintPoint-error').first().evaluate((el) => {
      const line = el.closest('.cm-line');
      return [...line.parentElement.children].indexOf(line) + 1;
    });
    assert.equal(markedLine, 4);
    assert.equal(await page.locator('#active-version').innerText(), 'v1', 'still version 1');
    await shot('workflow-syntax-error');
  });

  await step('fixing the code deploys version 2', async () => {
    await setCode(GREET);
    await page.click('#save-code');
    await page.getByText('Deployed version 2.').waitFor();
    assert.equal(await page.locator('#active-version').innerText(), 'v2');
    assert.equal(await page.locator('.cm-lintRange-error, .cm-lintPoint-error').count(), 0, 'the error mark is gone');
  });

  await step('a secret Environment Property is masked after saving', async () => {
    await page.click('#add-property');
    const row = page.locator('table.properties tbody tr').last();
    await row.locator('input[aria-label=Key]').fill('API_TOKEN');
    await row.locator('input[aria-label^="Value of"]').fill('tok-123456');
    await row.locator('input.secret-toggle').check();
    await page.click('#add-property');
    const plain = page.locator('table.properties tbody tr').last();
    await plain.locator('input[aria-label=Key]').fill('REGION');
    await plain.locator('input[aria-label^="Value of"]').fill('eu');
    await page.click('#save-properties');
    await page.getByText('Properties saved.').waitFor();
    const secretRow = page.locator('table.properties tbody tr.masked');
    assert.equal(await secretRow.count(), 1);
    assert.equal(await secretRow.locator('input[aria-label=Key]').inputValue(), 'API_TOKEN');
    assert.equal(await secretRow.locator('input[aria-label^="Value of"]').inputValue(), '', 'the value is not in the page');
    assert.ok(!(await page.content()).includes('tok-123456'));
    const settings = await api('GET', `/workflows/${greetId}/settings`);
    assert.deepEqual(settings.body, { settings: { API_TOKEN: '****', REGION: 'eu' }, secrets: ['API_TOKEN'] });
    // Saving again without touching the secret keeps its value.
    await plain.locator('input[aria-label^="Value of"]').fill('us');
    await page.click('#save-properties');
    await page.getByText('Properties saved.').waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('table.properties input')].some((i) => i.value === 'us'));
    // The Requirements card: an editor, empty for a workflow without requirements.
    assert.equal(await page.locator('#requirements').inputValue(), '');
    assert.ok(await page.locator('#requirements').isEditable());
    await page.waitForFunction(() => /Python 3\.\d+/.test(document.querySelector('#requirements-note').textContent));
    await shot('workflow', { fullPage: true });
  });

  await step('a network exception beyond what the server allows is refused, naming it; nothing changes', async () => {
    assert.equal(await page.locator('#egress-allow').inputValue(), '');
    await page.fill('#egress-allow', '10.0.0.1/8');
    await page.click('#save-egress');
    await page.locator('#egress-result .alert-error').waitFor();
    assert.match(await page.locator('#egress-result').innerText(), /422 invalid_request[\s\S]*10\.0\.0\.1\/8/);
    assert.equal(await page.locator('#egress-allow').getAttribute('aria-invalid'), 'true');
    const workflow = await api('GET', `/workflows/${greetId}`);
    assert.deepEqual(workflow.body.egress_allow, []);
    await page.fill('#egress-allow', '');
  });

  await step('the Retries card saves the retry policy', async () => {
    await page.check('#retry-enabled');
    await page.fill('#retry-max-attempts', '4');
    await page.fill('#retry-backoff-s', '0.5');
    await page.uncheck('#retry-on-killed');
    await page.click('#save-retry');
    await page.waitForFunction(() => document.querySelector('.toast')?.textContent === 'Retries saved');
    const workflow = await api('GET', `/workflows/${greetId}`);
    assert.deepEqual(workflow.body.retry, { max_attempts: 4, backoff_s: 0.5, on: ['error', 'timeout'] });
    await page.uncheck('#retry-enabled');
    await page.click('#save-retry');
    const deadline = Date.now() + 10_000;
    while ((await api('GET', `/workflows/${greetId}`)).body.retry !== null) {
      assert.ok(Date.now() < deadline, 'unchecking and saving removes the retry policy');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  let curl;
  await step('the Hook tab shows the hook URL, a copy button and a curl example', async () => {
    await page.click('nav.tabs >> text=Hook');
    await page.waitForURL(`${base}/workflows/${greetId}/trigger`);
    const url = await page.locator('#hook-url').inputValue();
    assert.match(url, new RegExp(`^${base}/teams/default/greet/python3\\.\\d+/[0-9a-f]{48}$`));
    curl = await page.locator('#curl-example').innerText();
    assert.ok(curl.includes(url), 'the curl example calls the hook URL');
    assert.ok((await page.locator('[data-copy]').count()) >= 2);
    await shot('workflow-hook');
  });

  await step('calling the hook with the curl example shown makes an execution appear live', async () => {
    await page.click('nav.tabs >> text=Executions');
    await page.waitForURL(`${base}/workflows/${greetId}/executions`);
    await page.locator('tbody tr').first().waitFor();
    const before = await page.locator('tbody tr').count();
    const answer = execFileSync('sh', ['-c', `${curl.replace(/\\\n/g, ' ')} -sS -i`], { encoding: 'utf8' });
    assert.match(answer, /^HTTP\/1\.1 201/);
    assert.match(answer, /x-execution-id: /i);
    assert.match(answer, /\{"hello": "ada", "calls": 1\}/);
    // No reload: the list polls.
    await page.waitForFunction((n) => document.querySelectorAll('tbody tr').length === n + 1, before, { timeout: 20_000 });
    const row = page.locator('table tbody tr').first();
    await row.locator('[data-status=success]').waitFor({ timeout: 20_000 });
    assert.match(await row.innerText(), /catch/);
    assert.match(await row.innerText(), /201/);
  });

  await step('the execution page shows the output (secret masked), response and settings changed', async () => {
    await page.locator('table tbody tr').first().locator('a').first().click();
    await page.waitForURL(/\/executions\/[0-9a-f-]{36}$/);
    const output = await page.locator('#output').innerText();
    assert.match(output, /hello ada, token \*\*\*\*/);
    assert.ok(!output.includes('tok-123456'), 'the secret is masked in the output');
    assert.match(await page.locator('#fact-response').innerText(), /201/);
    assert.match(await page.locator('#fact-trigger').innerText(), /catch/);
    assert.match(await page.locator('#fact-version').innerText(), /v2/);
    assert.match(await page.locator('#fact-attempt').innerText(), /1/);
    assert.equal(await page.locator('#fact-retry-of').count(), 0);
    assert.match(await page.locator('#settings-changed').innerText(), /Added\s+calls/);
    await shot('execution');
  });

  let replayedExecution = null;
  await step('Replay on an execution page runs its stored request again and links the new execution', async () => {
    const original = page.url().split('/').pop();
    assert.match(await page.locator('#fact-request-stored').innerText(), /yes/);
    await page.click('#replay');
    const link = page.locator('#replay-link');
    await link.waitFor({ timeout: 20_000 });
    replayedExecution = (await link.innerText()).trim();
    await link.click();
    await page.waitForURL(`${base}/executions/${replayedExecution}`);
    assert.match(await page.locator('#fact-trigger').innerText(), /replay/);
    assert.match(await page.locator('#fact-replay-of').innerText(), new RegExp(original));
  });

  await step('run now with a typed JSON request; an error shows its traceback', async () => {
    await page.goto(`${base}/workflows/${greetId}`);
    await page.click('.page-actions >> text=Run now');
    await page.waitForURL(`${base}/workflows/${greetId}/trigger#run-now`);
    await page.locator('#run-request').waitFor();
    const box = await page.locator('#run-now').evaluate((el) => {
      const r = el.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, height: innerHeight, scrolled: scrollY };
    });
    assert.ok(box.top >= 0 && (box.top < 120 || box.bottom <= box.height), `the Run now card is in view: ${JSON.stringify(box)}`);
    await page.fill('#run-request', '{"name": "grace"}');
    await page.click('#run-button');
    await page.locator('.run-result [data-status=success]').waitFor();
    assert.match(await page.locator('.run-result').innerText(), /hello grace/);
    await page.fill('#run-request', '[1, 2]');
    await page.click('#run-button');
    await page.getByText('The request must be a JSON object').waitFor();
    // A failing version: the error and its traceback on the execution page.
    await page.click('nav.tabs >> text=Function');
    await setCode('def workflow(_request, settings):\n    return settings["missing"]\n');
    await page.click('#save-code');
    await page.getByText('Deployed version 3.').waitFor();
    const run = await api('POST', `/workflows/${greetId}/runs`, { request: {} });
    assert.equal(run.body.status, 'error');
    await page.goto(`${base}/executions/${run.body.id}`);
    assert.match(await page.locator('#error').innerText(), /KeyError/);
    assert.match(await page.locator('#traceback').innerText(), /Traceback \(most recent call last\)/);
    await shot('execution-error');
  });

  await step('pause and resume', async () => {
    await page.goto(`${base}/workflows/${greetId}`);
    await page.click('#toggle-enabled');
    await page.locator('.page-header .state-paused').waitFor();
    const paused = await api('GET', `/workflows/${greetId}`);
    assert.equal(paused.body.enabled, false);
    await page.click('#toggle-enabled');
    await page.locator('.page-header .state-active').waitFor();
  });

  await step('the versions list shows each version and its state', async () => {
    await page.click('nav.tabs >> text=Versions');
    await page.locator('.version').nth(2).waitFor();
    assert.equal(await page.locator('.version').count(), 3);
    assert.match(await page.locator('.version-active').innerText(), /Version 3[\s\S]*active/);
    assert.equal(await page.locator('.version-active [data-state]').first().getAttribute('data-state'), 'active');
    assert.equal(await page.locator('.version[data-state=ready]').count(), 2, 'the older versions are ready');
  });

  await step('leaving unsaved code asks first', async () => {
    await page.click('nav.tabs >> text=Function');
    await page.locator('.cm-content').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.insertText('# draft\n');
    const messages = [];
    page.once('dialog', (dialog) => {
      messages.push(dialog.message());
      dialog.dismiss();
    });
    await page.click('nav.tabs >> text=Hook');
    await page.waitForTimeout(300);
    assert.match(messages[0] ?? '', /unsaved changes/);
    assert.equal(page.url(), `${base}/workflows/${greetId}`, 'stayed on the page');
    page.once('dialog', (dialog) => dialog.accept());
    await page.click('nav.tabs >> text=Hook');
    await page.waitForURL(`${base}/workflows/${greetId}/trigger`);
  });

  let nightlyId;
  await step('create a pull workflow with a cron schedule: the next five fire times show', async () => {
    await page.goto(`${base}/workflows/new`);
    await page.check('input[name=mode][value=pull]');
    await page.fill('#workflow-name', 'nightly-sync');
    await page.fill('input[name=cron]', '30 2 * * *');
    await page.fill('input[name=timezone]', 'Europe/Paris');
    await page.waitForFunction(() => document.querySelectorAll('.schedule-preview .fire-times li').length === 5 && [...document.querySelectorAll('.schedule-preview .fire-times li')].every((li) => li.textContent.includes('02:30')));
    // A bad expression says why, in place.
    await page.fill('input[name=cron]', '61 2 * * *');
    await page.locator('.schedule-preview .inline-error').waitFor();
    assert.match(await page.locator('.schedule-preview').innerText(), /cron/);
    await page.fill('input[name=cron]', '30 2 * * *');
    await page.locator('.schedule-preview .fire-times li').nth(4).waitFor();
    await shot('create-pull', { fullPage: true });
    await page.click('button[type=submit]');
    await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
    nightlyId = page.url().split('/').pop();
    await page.locator('.cm-content').getByText('def workflow(settings):').waitFor();
    await page.click('nav.tabs >> text=Schedule');
    const times = page.locator('#next-fire-times li');
    await times.nth(4).waitFor();
    assert.equal(await times.count(), 5);
    for (const text of await times.allInnerTexts()) assert.match(text, /02:30 Europe\/Paris/);
    const workflow = await api('GET', `/workflows/${nightlyId}`);
    assert.deepEqual(workflow.body.schedule, { cron: '30 2 * * *', timezone: 'Europe/Paris' });
    assert.equal(await times.first().getAttribute('data-time'), workflow.body.next_run_at);
    await shot('workflow-schedule');
  });

  await step('change the schedule to an interval', async () => {
    await page.check('input[value=every] >> nth=0', { force: true });
    await page.fill('input[name=every]', '90m');
    await page.click('#save-schedule');
    await page.getByText('Schedule saved.').waitFor();
    await page.getByText('every 1h30m').waitFor();
    assert.equal(await page.locator('#next-fire-times li').count(), 5);
  });

  await step('the workflows list shows mode, state, last execution, next run and error rate; filter by name', async () => {
    await page.click('nav.nav >> text=Workflows');
    await page.waitForURL(`${base}/workflows`);
    const greet = page.locator('tbody tr', { hasText: 'greet' });
    await greet.waitFor();
    const text = await greet.innerText();
    assert.match(text, /catch/);
    assert.match(text, /python3\.\d+/);
    assert.match(text, /active/);
    assert.match(text, /error/, 'the last execution failed');
    assert.match(text, /20 %/, 'one failed of five (the replay included)');
    const nightly = page.locator('tbody tr', { hasText: 'nightly-sync' });
    assert.match(await nightly.innerText(), /pull[\s\S]*never[\s\S]*in (1 h|2 h|\d+ min)/);
    await shot('workflows');
    await page.fill('input[type=search]', 'night');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
    assert.match(await page.locator('tbody tr').innerText(), /nightly-sync/);
    assert.match(page.url(), /\?q=night$/);
  });

  await step('all executions, live, with a status filter', async () => {
    await page.click('nav.nav >> text=Executions');
    await page.waitForURL(`${base}/executions`);
    // Four runs of greet and the replay of one.
    await page.locator('tbody tr').nth(4).waitFor();
    assert.equal(await page.locator('tbody tr').count(), 5);
    await page.selectOption('select[name=status]', 'error');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
    assert.match(await page.locator('tbody tr').innerText(), /greet[\s\S]*manual/);
    // A new execution appears without a reload.
    await page.selectOption('select[name=status]', '');
    await api('POST', `/workflows/${nightlyId}/runs`, {});
    await page.locator('tbody tr', { hasText: 'nightly-sync' }).waitFor({ timeout: 20_000 });
    await shot('executions');
  });

  await step('the Failure alerts card saves an alert URL and its statuses; a bad URL is refused naming the field', async () => {
    await page.goto(`${base}/workflows/${greetId}/executions`);
    await page.locator('#alerts-card').waitFor();
    assert.equal(await page.locator('#alert-url').inputValue(), '');
    await page.fill('#alert-url', 'ftp://chat.example/x');
    await page.click('#save-alerts');
    await page.locator('#alerts-card .alert-error').waitFor();
    assert.match(await page.locator('#alerts-card .alert-error').innerText(), /invalid_request[\s\S]*alerts\.url/);
    await page.fill('#alert-url', 'http://127.0.0.1:9/alerts');
    await page.uncheck('#alert-on input[value=killed]');
    await page.fill('#alert-min-interval', '600');
    await page.click('#save-alerts');
    await page.locator('#alerts-card .alert-error').waitFor({ state: 'detached' });
    const workflow = await api('GET', `/workflows/${greetId}`);
    assert.deepEqual(workflow.body.alerts, { url: 'http://127.0.0.1:9/alerts', on: ['error', 'timeout'], min_interval_s: 600 });
    assert.match(await page.locator('#alert-deliveries').innerText(), /No alert sent yet/);
    await page.locator('#alerts-card').scrollIntoViewIfNeeded();
    await shot('workflow-alerts', { top: false });
  });

  let datesId;
  let datesHook;
  const callDates = async () => {
    const response = await fetch(`${base}${datesHook}`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } });
    return { status: response.status, body: await response.text() };
  };
  await step('a first deploy whose import fails leaves no active version: the page says so, the hook answers 503', async () => {
    const created = await api('POST', '/workflows', { name: 'dates', mode: 'catch', code: DATES });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.deployment.state, 'failed');
    assert.equal(created.body.version, null);
    datesId = created.body.id;
    datesHook = created.body.hook_url;
    assert.equal((await callDates()).status, 503);
    await page.goto(`${base}/workflows/${datesId}`);
    assert.equal(await page.locator('#active-version').innerText(), 'no active version');
    const failure = page.locator('#deploy-result .deploy-failed');
    await failure.waitFor();
    assert.match(await failure.innerText(), /Version 1 failed to deploy[\s\S]*No module named 'dateutil'[\s\S]*hook answers 503/);
    assert.match(await failure.locator('.build-log pre').innerText(), /Traceback[\s\S]*ModuleNotFoundError/);
  });

  await step('requirements: python-dateutil==2.8.2 is installed, the version becomes active and the hook uses it', async () => {
    // A refused line is named, nothing is deployed.
    await page.fill('#requirements', '--index-url http://example.invalid/simple');
    await page.click('#save-requirements');
    await page.locator('#requirements-result .alert-error').waitFor();
    assert.match(await page.locator('#requirements-result').innerText(), /422 invalid_request[\s\S]*line 1/);
    assert.equal(await page.locator('#requirements').getAttribute('aria-invalid'), 'true');
    // Code and requirements edited together deploy as one version.
    await page.locator('.cm-content').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.insertText('# needs python-dateutil\n');
    await page.fill('#requirements', 'python-dateutil==2.8.2');
    assert.equal(await page.locator('#code-state').innerText(), 'Unsaved changes (code and requirements)');
    await page.click('#save-requirements');
    await page.locator('#requirements-result').getByText('Deployed version 2.').waitFor();
    assert.equal(await page.locator('#active-version').innerText(), 'v2');
    assert.equal(await page.locator('#deploy-result').innerText(), '', 'the failure of version 1 is no longer shown');
    const v2 = await api('GET', `/workflows/${datesId}/versions/2`);
    assert.deepEqual(v2.body.requirements, ['python-dateutil==2.8.2']);
    assert.match(v2.body.code, /# needs python-dateutil\n$/);
    assert.deepEqual(await callDates(), { status: 200, body: '2.8.2' });
  });

  await step('a requirement that does not exist fails the deploy with its build log; the previous version keeps serving', async () => {
    const missing = `flowd-no-such-package-${Math.random().toString(36).slice(2, 10)}`;
    await page.fill('#requirements', `python-dateutil==2.8.2\n${missing}`);
    await page.click('#save-requirements');
    const failure = page.locator('#requirements-result .deploy-failed');
    await failure.waitFor();
    const text = await failure.innerText();
    assert.match(text, /Version 3 failed to deploy/);
    assert.ok(text.includes(missing), `the error names the package: ${text}`);
    assert.match(text, /Version 2 is still serving/);
    const log = failure.locator('.build-log pre');
    assert.ok(await log.isVisible(), 'the build log is open');
    assert.ok((await log.innerText()).includes(missing), 'the build log has the installer output');
    assert.equal(await page.locator('#active-version').innerText(), 'v2');
    assert.deepEqual(await callDates(), { status: 200, body: '2.8.2' });
    await page.locator('#requirements-card').evaluate((card) => window.scrollTo(0, card.getBoundingClientRect().top + window.scrollY - 70));
    await shot('workflow-requirements-failed', { top: false });
  });

  await step('the versions list shows each version\'s state, requirements, environment and build log', async () => {
    await page.click('nav.tabs >> text=Versions');
    await page.locator('.version').nth(2).waitFor();
    const state = (n) => page.locator(`.version[data-version="${n}"]`).getAttribute('data-state');
    assert.deepEqual([await state(3), await state(2), await state(1)], ['failed', 'active', 'failed']);
    const failed = page.locator('.version[data-version="3"]');
    assert.match(await failed.locator('.version-requirements').innerText(), /python-dateutil==2\.8\.2[\s\S]*flowd-no-such-package-/);
    assert.match(await failed.locator('.version-error').innerText(), /flowd-no-such-package-/);
    await failed.locator('.build-log summary').click();
    assert.ok(await failed.locator('.build-log pre').isVisible());
    const active = page.locator('.version[data-version="2"]');
    assert.match(await active.locator('.version-environment').innerText(), /^python3\.\d+-[0-9a-f]+$/);
    assert.match(await page.locator('.version[data-version="1"] .version-error').innerText(), /No module named 'dateutil'/);
    await shot('workflow-versions', { fullPage: true });
  });

  await step('errors from the API show in place: an unknown execution', async () => {
    await page.goto(`${base}/executions/0190d5a4-0000-7000-8000-000000000000`);
    const alert = page.locator('.alert-error');
    await alert.waitFor();
    assert.match(await alert.innerText(), /404 not_found/);
    assert.ok((await page.locator('.topbar').count()) === 1, 'the page keeps its navigation');
  });

  await step('at phone width the pages fit the screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [target, name] of [
      [`${base}/workflows`, 'phone-workflows'],
      [`${base}/workflows/${greetId}`, 'phone-workflow'],
      [`${base}/executions`, null],
      [`${base}/workflows/${nightlyId}/trigger`, null],
      [`${base}/workflows/${datesId}`, null],
      [`${base}/workflows/${datesId}/versions`, null],
    ]) {
      await page.goto(target);
      await page.locator('.page-header h1').waitFor();
      await page.waitForTimeout(300);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `${target} is ${width} px wide at 390 px`);
      if (name) await shot(name);
    }
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await step('a viewer key sees no Save, Deploy, Run or Delete control, and secrets masked', async () => {
    const created = await api('POST', '/api-keys', { name: 'watcher', role: 'viewer' });
    assert.equal(created.status, 201);
    await page.click('.signout');
    await page.waitForURL(`${base}/sign-in`);
    await page.fill('#api-key', created.body.key);
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/workflows`);
    assert.match(await page.locator('#whoami').innerText(), /watcher · viewer/);
    await page.locator('table').first().waitFor();
    assert.equal(await page.locator('#create-workflow').isVisible(), false);
    assert.equal(await page.locator('nav.nav >> text=Audit').count(), 0);
    await page.goto(`${base}/workflows/${greetId}`);
    await page.locator('table.properties').waitFor();
    for (const control of ['#save-code', '#save-properties', '#add-property', '#toggle-enabled', 'text=▶ Run now', 'button:has-text("Delete")']) {
      assert.equal(await page.locator(control).first().isVisible(), false, `${control} is hidden from a viewer`);
    }
    assert.ok(!(await page.content()).includes('tok-123456'), 'no secret value in the page');
    await shot('viewer-workflow');
    await page.goto(`${base}/workflows/${greetId}/executions`);
    await page.locator('#alerts-card').waitFor();
    assert.equal(await page.locator('#save-alerts').isVisible(), false, '#save-alerts is hidden from a viewer');
    await page.goto(`${base}/executions/${replayedExecution}`);
    await page.locator('#fact-trigger').waitFor();
    assert.equal(await page.locator('#replay').isVisible(), false, 'Replay is hidden from a viewer');
  });

  await step('an admin sees the audit log and manages teams and keys', async () => {
    await page.click('.signout');
    await page.waitForURL(`${base}/sign-in`);
    await page.fill('#api-key', adminKey);
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/workflows`);
    await page.click('nav.nav >> text=Audit');
    await page.waitForURL(`${base}/audit`);
    await page.getByText('workflow.created').first().waitFor();
    await page.getByText('key.created').first().waitFor();
    await page.click('nav.nav >> text=Teams & keys');
    await page.waitForURL(`${base}/admin`);
    await page.fill('#new-team', 'payroll');
    await page.click('text=Create team');
    await page.locator('td >> text=payroll').first().waitFor();
    await page.fill('#new-key-name', 'ci-payroll');
    await page.selectOption('#new-key-role', 'developer');
    await page.selectOption('#new-key-team', 'payroll');
    await page.click('#create-key');
    const shown = page.locator('#created-key code.key-once');
    await shown.waitFor();
    assert.match(await shown.innerText(), /^flowd_[0-9a-f]{64}$/);
    const keys = await api('GET', '/api-keys');
    assert.ok(keys.body.api_keys.some((k) => k.name === 'ci-payroll' && k.team === 'payroll' && k.role === 'developer'));
    await shot('teams-and-keys');
  });

  await step('a key that stops working sends back to sign-in', async () => {
    await page.goto(`${base}/workflows`);
    await page.evaluate(() => sessionStorage.setItem('flowd.apiKey', 'revoked-key'));
    await page.goto(`${base}/workflows/${greetId}`);
    await page.waitForURL(/\/sign-in\?next=/);
    assert.match(await page.locator('.signin-message').innerText(), /refused/);
    await page.fill('#api-key', adminKey);
    await page.click('button[type=submit]');
    await page.waitForURL(`${base}/workflows/${greetId}`);
  });

  await step('sign out forgets the key', async () => {
    await page.click('.signout');
    await page.waitForURL(`${base}/sign-in`);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('flowd.apiKey')), null);
  });

  assert.deepEqual(pageErrors, [], 'no uncaught error in the page');
  console.log(`# all ${passed} steps passed`);
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(0);
} catch (error) {
  console.log(`not ok ${passed + 1} - ${stepName}`);
  console.log(error && error.stack ? error.stack : String(error));
  console.log(`page: ${page.url()}`);
  if (pageErrors.length) console.log(`page errors:\n  ${pageErrors.join('\n  ')}`);
  try {
    const failure = path.join(os.tmpdir(), `flowd-e2e-failure-${Date.now()}.png`);
    await page.screenshot({ path: failure, fullPage: true });
    console.log(`screenshot of the failure: ${failure}`);
    const text = await page.locator('body').innerText();
    console.log(`page text:\n${text.slice(0, 3000)}`);
  } catch {
    // The browser may be gone.
  }
  console.log(`# ${passed} steps passed, then one failed`);
  await context.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(1);
}
