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

/**
 * Calls `/api/v1<path>` and returns the parsed JSON body (null for 202/204 without a body).
 * Throws `ApiError` for any non-2xx answer and for network failures (status 0).
 */
export async function api(method, path, body, { auth = true } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth && bearerToken) headers.authorization = `Bearer ${bearerToken}`;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, `Cannot reach the console API: ${error.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null; // e.g. a proxy's HTML error page: fall back to the status line below
    }
  }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText || 'request failed'}`;
    const error = new ApiError(response.status, message, data && data.fields);
    if (response.status === 401 && auth) onUnauthorized(error);
    throw error;
  }
  return data;
}

/** Path segment escaping for ids taken from the URL or from user input. */
export const seg = (value) => encodeURIComponent(value);
