// Sign-in with the OpenID Connect provider the console service names in
// `GET /api/v1/auth/config`: authorization code + PKCE in the browser (oidc-client-ts), the
// ID token is the API's bearer token (the API checks that its `aud` is our client id).
import { UserManager, WebStorageStateStore } from 'oidc-client-ts';
import { api } from './api.js';

export const CALLBACK_PATH = '/auth/callback';

/** `{enabled, authority, client_id, scopes}`; the one call made without a token. */
export async function loadAuthConfig() {
  return api('GET', '/auth/config', undefined, { auth: false });
}

/** The `UserManager` for an enabled config. */
export function createUserManager(config) {
  // `scopes` may come as a list or as a space-separated string; `openid` is always needed.
  const scopes = Array.isArray(config.scopes) ? config.scopes : String(config.scopes || '').split(/\s+/);
  const scope = [...new Set(['openid', ...scopes.filter(Boolean)])].join(' ');
  // sessionStorage: the session ends with the tab, and tokens are not shared across tabs.
  const store = new WebStorageStateStore({ store: window.sessionStorage });
  return new UserManager({
    authority: config.authority,
    client_id: config.client_id,
    redirect_uri: `${location.origin}${CALLBACK_PATH}`,
    post_logout_redirect_uri: `${location.origin}/`,
    response_type: 'code',
    scope,
    userStore: store,
    stateStore: store,
    // The API only needs the ID token; no userinfo call, no silent renew iframe (when the
    // token expires the API answers 401 and the user signs in again).
    loadUserInfo: false,
    automaticSilentRenew: false,
    monitorSession: false,
  });
}

/** Sends the browser to the provider, remembering where to come back to. */
export function signIn(userManager, returnTo) {
  return userManager.signinRedirect({ state: { returnTo } });
}

/** Completes the redirect back from the provider; returns the path saved before sign-in. */
export async function completeSignIn(userManager) {
  const user = await userManager.signinRedirectCallback();
  const returnTo = user.state && typeof user.state.returnTo === 'string' ? user.state.returnTo : '/';
  // Only same-origin paths: never bounce to a URL that came through the provider.
  return { user, returnTo: returnTo.startsWith('/') && !returnTo.startsWith('//') ? returnTo : '/' };
}

/** A stored, unexpired user, or null. */
export async function storedUser(userManager) {
  const user = await userManager.getUser();
  return user && !user.expired && user.id_token ? user : null;
}
