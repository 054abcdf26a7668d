// The REST API client (docs/control-plane.md). One function, `api`, so that every call sends
// the token the same way and every failure becomes an `ApiError` the pages can show.

/** A failed API call: the HTTP status, the server's `error` text and, on 400, its `fields`. */
export class ApiError extends Error {
  constructor(status, message, fields = {}) {
    super(message);
    this.status = status;
    this.fields = fields || {};
  }
}

// The ID token of the signed-in user (null when authentication is off), and what to do when
// the API says the token is missing or invalid (401): the app goes back to the sign-in page.
let bearerToken = null;
let onUnauthorized = () => {};

export function setToken(token) {
  bearerToken = token;
}

export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** JSON of `text`, or null when it is empty or not JSON (e.g. a proxy's HTML error page). */
function parsedOrNull(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Calls `/api/v1<path>` and returns the answer's body as text. Sends the bearer token (unless
 * `auth` is false) and throws `ApiError` for any non-2xx answer (with the server's `error` and
 * `fields`) and for network failures (status 0); a 401 also goes to the unauthorized handler.
 */
async function call(method, path, body, { accept, auth }) {
  const headers = { accept };
  // A file (a plugin's module) goes as it is; anything else as JSON.
  const raw = body instanceof Blob || body instanceof ArrayBuffer;
  if (body !== undefined) headers['content-type'] = raw ? 'application/wasm' : 'application/json';
  if (auth && bearerToken) headers.authorization = `Bearer ${bearerToken}`;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, `Cannot reach the console API: ${error.message}`);
  }
  const text = await response.text();
  if (!response.ok) {
    const data = parsedOrNull(text);
    const message = (data && data.error) || `${response.status} ${response.statusText || 'request failed'}`;
    const error = new ApiError(response.status, message, data && data.fields);
    if (response.status === 401 && auth) onUnauthorized(error);
    throw error;
  }
  return text;
}

/**
 * Calls `/api/v1<path>` and returns the parsed JSON body (null for 202/204 without a body).
 * Throws `ApiError` for any non-2xx answer and for network failures (status 0).
 */
export async function api(method, path, body, { auth = true } = {}) {
  return parsedOrNull(await call(method, path, body, { accept: 'application/json', auth }));
}

/** Calls `/api/v1<path>` like `api` but returns the body as text (e.g. a CSV export). */
export async function apiText(method, path, body) {
  return call(method, path, body, { accept: 'text/csv, text/plain;q=0.9, application/json;q=0.5', auth: true });
}

/** Hands `text` to the browser as a downloaded file named `filename`. */
export function downloadText(filename, text, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  // The download starts from the click; the URL only has to outlive it.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Path segment escaping for ids taken from the URL or from user input. */
export const seg = (value) => encodeURIComponent(value);
