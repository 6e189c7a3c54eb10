// The REST API under /api/v1, called with the API key kept in sessionStorage (this tab only).

const KEY = 'flowd.apiKey';
const SESSION = 'flowd.session';
const RANK = { viewer: 1, developer: 2, admin: 3 };

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function clearApiKey() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(SESSION);
}

/** The signed-in key as `GET /whoami` answered it: `{id, name, role, team}`, or null. */
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) ?? 'null');
  } catch {
    return null;
  }
}

export function setSession(whoami) {
  sessionStorage.setItem(SESSION, JSON.stringify(whoami));
}

/** Whether the signed-in key's role allows what `required` may do (viewer < developer < admin). */
export function allows(required) {
  return (RANK[session()?.role] ?? 0) >= RANK[required];
}

/** An error answered by the API (`{"error": {"code", "message", ...}}`) or a failed request. */
export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let unauthorized = () => {};

/** What to do when the API answers 401 (the key is missing, wrong or revoked). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/**
 * Calls the API; resolves to the decoded JSON body, rejects with an ApiError.
 * `options.key` uses another key (signing in); `options.quiet401` does not sign out on 401.
 */
export async function api(method, path, body, options = {}) {
  const key = options.key ?? apiKey();
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, 'unreachable', `flowd could not be reached (${error.message}). Is the server running?`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && typeof data.error === 'object' ? data.error : null;
    const failure = new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? `${response.status} ${response.statusText || 'error'}${text && !data ? `: ${text.slice(0, 200)}` : ''}`,
      error ?? {},
    );
    if (response.status === 401 && !options.quiet401) unauthorized(failure);
    throw failure;
  }
  return data;
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body ?? {}, options);
export const patch = (path, body, options) => api('PATCH', path, body, options);
export const del = (path, options) => api('DELETE', path, undefined, options);
