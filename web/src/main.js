// flowd's web console: boot, layout, and the page lifecycle.

import './style.css';
import { allows, apiKey, clearApiKey, get, onUnauthorized, session, setSession } from './api.js';
import { fill, h, link } from './dom.js';
import { match, navigate, route, setLeaveGuard, startRouter } from './router.js';
import { errorBox } from './ui.js';
import { signInPage } from './pages/signin.js';
import { workflowsPage } from './pages/workflows.js';
import { createPage } from './pages/create.js';
import { workflowPage } from './pages/workflow.js';
import { executionsPage } from './pages/executions.js';
import { executionPage } from './pages/execution.js';
import { auditPage } from './pages/audit.js';
import { adminPage } from './pages/admin.js';

route('/sign-in', signInPage, { public: true, title: 'Sign in' });
route('/', () => navigate('/workflows', { replace: true }));
route('/workflows', workflowsPage, { nav: 'workflows', title: 'Workflows' });
route('/workflows/new', createPage, { nav: 'workflows', title: 'Create workflow' });
route('/workflows/:id', workflowPage, { nav: 'workflows' });
route('/workflows/:id/:tab', workflowPage, { nav: 'workflows' });
route('/executions', executionsPage, { nav: 'executions', title: 'Executions' });
route('/executions/:id', executionPage, { nav: 'executions' });
route('/audit', auditPage, { nav: 'audit', title: 'Audit log' });
route('/admin', adminPage, { nav: 'admin', title: 'Teams and keys' });

let generation = 0;
let cleanups = [];

function shell(active) {
  const item = (name, href, label) => h('a', { href, class: ['nav-link', active === name && 'active'] }, label);
  return h(
    'header',
    { class: 'topbar' },
    h(
      'div',
      { class: 'topbar-inner' },
      link('/workflows', h('span', { class: 'brand' }, h('span', { class: 'brand-mark' }, 'f'), h('span', { class: 'brand-name' }, 'flowd'))),
      h(
        'nav',
        { class: 'nav' },
        item('workflows', '/workflows', 'Workflows'),
        item('executions', '/executions', 'Executions'),
        allows('developer') ? item('audit', '/audit', 'Audit') : null,
        allows('admin') ? item('admin', '/admin', 'Teams & keys') : null,
      ),
      h('span', { class: 'whoami muted small', id: 'whoami', title: `team ${session()?.team ?? ''}` }, `${session()?.name ?? ''} · ${session()?.role ?? ''}`),
      h(
        'button',
        {
          type: 'button',
          class: 'btn btn-ghost signout',
          onclick: () => {
            clearApiKey();
            navigate('/sign-in');
          },
        },
        'Sign out',
      ),
    ),
  );
}

async function renderPath(pathname, query) {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  setLeaveGuard(null);
  const gen = ++generation;
  const app = document.getElementById('app');
  const found = match(pathname);
  if (found && !found.options.public && !apiKey()) {
    const next = pathname === '/' ? '' : `?next=${encodeURIComponent(pathname + location.search)}`;
    return navigate(`/sign-in${next}`, { replace: true });
  }
  if (found && !found.options.public && !session()) {
    // A tab signed in before roles were shown: ask who the key is.
    try {
      setSession(await get('/whoami'));
    } catch {
      return;
    }
    if (gen !== generation) return;
  }
  // What the role does not allow is hidden (style.css: body[data-role] .needs-developer).
  document.body.dataset.role = session()?.role ?? '';
  const main = h('main', { class: 'main', id: 'main' });
  if (found && found.options.public) fill(app, main);
  else fill(app, shell(found?.options.nav), h('div', { class: 'content' }, main));
  document.title = found?.options.title ? `${found.options.title} · flowd` : 'flowd';
  if (!found) {
    fill(main, errorBox({ status: 404, code: 'not_found', message: `There is no page at ${pathname}.` }, { title: 'Page not found' }), h('p', null, link('/workflows', '← Back to the workflows')));
    return;
  }
  const ctx = {
    params: found.params,
    query,
    main,
    alive: () => gen === generation,
    onCleanup: (fn) => cleanups.push(fn),
    setTitle: (title) => {
      if (gen === generation) document.title = `${title} · flowd`;
    },
    /** Runs `fn` every `ms` (not while the tab is hidden) until the page is left. */
    every: (ms, fn) => {
      let timer = null;
      let stopped = false;
      const tick = async () => {
        if (stopped) return;
        if (!document.hidden) {
          try {
            await fn();
          } catch {
            // The page shows its own errors; keep polling.
          }
        }
        if (!stopped) timer = setTimeout(tick, ms);
      };
      timer = setTimeout(tick, ms);
      const stop = () => {
        stopped = true;
        clearTimeout(timer);
      };
      cleanups.push(stop);
      return stop;
    },
  };
  try {
    await found.page(ctx);
  } catch (error) {
    if (ctx.alive() && error?.status !== 401) {
      fill(main, errorBox(error, { title: 'This page could not be loaded', retry: () => renderPath(location.pathname, new URLSearchParams(location.search)) }));
    }
  }
}

onUnauthorized((error) => {
  if (location.pathname === '/sign-in') return;
  clearApiKey();
  const next = encodeURIComponent(location.pathname + location.search);
  sessionStorage.setItem('flowd.signInReason', error.message);
  navigate(`/sign-in?next=${next}`, { replace: true });
});

// Whatever escapes a page is shown, never a blank screen.
function toastError(message) {
  const box = h('div', { class: 'toast toast-error', role: 'alert' }, message);
  document.body.append(box);
  setTimeout(() => box.remove(), 8000);
}
window.addEventListener('error', (event) => toastError(`Unexpected error: ${event.message}`));
window.addEventListener('unhandledrejection', (event) => {
  const reason = event.reason;
  if (reason?.status === 401) return;
  toastError(reason?.message ? `${reason.code ? reason.code + ': ' : ''}${reason.message}` : `Unexpected error: ${reason}`);
});

startRouter(renderPath);
