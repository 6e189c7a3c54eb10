// Deploys and versions: a version's state badge, its build log, how a deploy went, and waiting
// for a version that is still building.
//
// A deploy stores a new version, builds its environment (its requirements installed) and imports
// its module in the sandbox; only then does it become active. A failed version leaves the previous
// one serving.

import { get } from './api.js';
import { h } from './dom.js';
import { loading, notice } from './ui.js';

const STATE_TITLES = {
  active: 'Serving: the hook and the schedule run this version.',
  ready: 'Built and imported without error; another version is active.',
  failed: 'Its requirements did not install or its module did not import: it never served.',
  building: 'Installing its requirements and importing its module…',
};

/** `active`, `ready`, `failed` or `building`. */
export function versionBadge(state) {
  return h('span', { class: `badge build-${state}`, 'data-state': state, title: STATE_TITLES[state] ?? null }, state);
}

/** The installer's output or the import's traceback, collapsible, monospace, scrollable. */
export function buildLog(text, { open = false, label = 'Build log' } = {}) {
  if (!text) return null;
  return h(
    'details',
    { class: 'build-log', open },
    h('summary', null, label),
    h('pre', { class: 'output build-log-text', tabindex: 0, 'aria-label': label }, text),
  );
}

/** What serves while `version` is not active: the active version, or nothing (503). */
export function servingNote(workflow) {
  if (workflow.version !== null && workflow.version !== undefined) {
    return h('div', { class: 'small still-serving' }, `Version ${workflow.version} is still serving: nothing changed for callers.`);
  }
  return h(
    'div',
    { class: 'small still-serving' },
    workflow.mode === 'catch'
      ? 'No version is active: the hook answers 503 until a version deploys.'
      : 'No version is active: the workflow does not run until a version deploys.',
  );
}

/** The banner of a workflow without an active version. */
export function noActiveVersion(workflow) {
  return notice(
    'error',
    h('div', { class: 'alert-title' }, 'No active version'),
    workflow.mode === 'catch'
      ? 'No version of this workflow has deployed yet: its hook answers 503 (no_active_version) until one does.'
      : 'No version of this workflow has deployed yet: it does not run until one does.',
  );
}

/**
 * How the deploy of a version went, for a `deployment` of a PATCH/POST answer or a version of
 * GET …/versions (both have `version`, `state`, `error`, `build_log`); `workflow` as it is now.
 */
export function deployOutcome(deployment, workflow) {
  const n = deployment.version;
  if (deployment.state === 'building') return building(n);
  if (deployment.state === 'failed') {
    return h(
      'div',
      { class: 'alert alert-error deploy-failed', role: 'alert', 'data-version': n },
      h('div', { class: 'alert-title' }, `Version ${n} failed to deploy`),
      h('div', { class: 'deploy-error mono' }, deployment.error ?? 'the build failed'),
      servingNote(workflow),
      buildLog(deployment.build_log, { open: true }),
    );
  }
  if (deployment.active || deployment.state === 'active') {
    return notice('success', h('span', { class: 'deploy-ok', 'data-version': n }, `Deployed version ${n}.`), buildLog(deployment.build_log));
  }
  // Built and imported, but a newer version went live meanwhile.
  return notice('info', `Version ${n} is ready, but version ${workflow.version} is the active one (it was deployed meanwhile).`, buildLog(deployment.build_log));
}

/** A deploy in progress. */
export function building(n) {
  return h('div', { class: 'deploy-building', 'data-version': n }, loading(`Building version ${n}: installing its requirements and importing its module…`));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until version `n` of a workflow is settled (`GET …/versions/{n}?wait=true` answers when it
 * is) and resolves to that version; `null` when the page was left meanwhile. Network failures are
 * retried; an API error is thrown.
 */
export async function settleVersion(ctx, workflowId, n) {
  for (let attempt = 0; ; attempt += 1) {
    if (!ctx.alive()) return null;
    let version;
    try {
      version = await get(`/workflows/${encodeURIComponent(workflowId)}/versions/${n}?wait=true`);
    } catch (error) {
      if (error.status && error.status < 500) throw error;
      await sleep(Math.min(1000 * (attempt + 1), 5000));
      continue;
    }
    if (!ctx.alive()) return null;
    if (version.state !== 'building') return version;
    await sleep(500);
  }
}
