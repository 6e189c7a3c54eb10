// Client-side routing with the History API: flowd serves index.html for every console path.

const routes = [];
let current = null;
let renderPage = null;

/** Registers `pattern` (`/workflows/:id`) for `page(ctx)`. */
export function route(pattern, page, options = {}) {
  const names = [];
  const regex = new RegExp(
    '^' +
      pattern.replace(/\/:([a-z]+)/g, (_, name) => {
        names.push(name);
        return '/([^/]+)';
      }) +
      '/?$',
  );
  routes.push({ regex, names, page, options });
}

export function match(pathname) {
  for (const r of routes) {
    const m = pathname.match(r.regex);
    if (m) {
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
      return { ...r, params };
    }
  }
  return null;
}

/** Guards against leaving a page with unsaved changes: `guard()` returns a message or null. */
let guard = null;
export function setLeaveGuard(fn) {
  guard = fn;
}

function allowedToLeave() {
  const message = guard && guard();
  return !message || window.confirm(message);
}

export function navigate(path, { replace = false } = {}) {
  if (path === location.pathname + location.search + location.hash) return render();
  if (!allowedToLeave()) return;
  guard = null;
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  window.scrollTo(0, 0);
  return render();
}

/** Scrolls to the element the URL's #fragment names, once the page has drawn it. */
export function scrollToHash() {
  if (!location.hash) return;
  const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target) target.scrollIntoView({ block: 'start' });
}

/** Changes the query string without rendering again (filters kept in the URL). */
export function setQuery(params) {
  const url = new URL(location.href);
  for (const [key, value] of Object.entries(params)) {
    if (value) url.searchParams.set(key, value);
    else url.searchParams.delete(key);
  }
  history.replaceState(null, '', url.pathname + url.search);
}

export function render() {
  return renderPage && renderPage(location.pathname, new URLSearchParams(location.search));
}

export function startRouter(renderer) {
  renderPage = renderer;
  window.addEventListener('popstate', () => {
    guard = null;
    render();
  });
  window.addEventListener('beforeunload', (event) => {
    if (guard && guard()) {
      event.preventDefault();
      event.returnValue = '';
    }
  });
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = event.target.closest('a');
    if (anchor) {
      if (anchor.target || anchor.hasAttribute('download')) return;
      const url = new URL(anchor.href, location.href);
      if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/teams/')) return;
      event.preventDefault();
      navigate(url.pathname + url.search + url.hash);
      return;
    }
    const row = event.target.closest('tr[data-href]');
    if (row && !event.target.closest('button, input, select, textarea') && !window.getSelection()?.toString()) {
      navigate(row.dataset.href);
    }
  });
  render();
}

export { current };
