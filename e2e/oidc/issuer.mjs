// A real OpenID Connect issuer (oidc-provider) for the console's end-to-end tests.
//
//   PORT=0 CLIENT_ID=clickstream-console \
//   REDIRECT_URIS=http://127.0.0.1:3000/auth/callback \
//   POST_LOGOUT_REDIRECT_URIS=http://127.0.0.1:3000/ node issuer.mjs
//
// Prints exactly one line `ISSUER http://127.0.0.1:<port>` on stdout once it listens; every
// log goes to stderr (tests read stdout). Runs offline: the signing key and cookie keys are
// generated at start, nothing is fetched.
//
// One public client (no secret, PKCE required, authorization code only). The sign-in page is
// a minimal form (`input[name=login]`, `input[name=password]`, `button[type=submit]`, ids
// `login`, `password`, `submit`): any password works and the login name becomes the subject.
// The ID token carries `roles`: logins starting with `admin` → ["admin"], `operator` →
// ["operator"], `analyst` → ["analyst"], otherwise []. Consent is granted without asking,
// as for a first-party client, so there is no consent page.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

// oidc-provider prints its notices with console.info (stdout); stdout is reserved for the
// ISSUER line, so every console output goes to stderr.
console.log = console.info = console.debug = (...args) => console.error(...args);

const list = (value) => (value || '').split(',').map((item) => item.trim()).filter(Boolean);
const port = Number(process.env.PORT || 0);
const clientId = process.env.CLIENT_ID || 'clickstream-console';
const redirectUris = list(process.env.REDIRECT_URIS);
const postLogoutRedirectUris = list(process.env.POST_LOGOUT_REDIRECT_URIS);
if (redirectUris.length === 0) {
  console.error('REDIRECT_URIS is required (comma-separated), e.g. http://127.0.0.1:3000/auth/callback');
  process.exit(2);
}

/** The roles a login gets, by the prefix of its name. */
function rolesOf(login) {
  for (const role of ['admin', 'operator', 'analyst']) {
    if (login.toLowerCase().startsWith(role)) return [role];
  }
  return [];
}

/** A fresh RS256 signing key as a private JWK (the provider publishes its public half at /jwks). */
function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

// Listen first: with PORT=0 the issuer URL (which the provider needs at construction) is only
// known once the port is bound.
let handler = (_request, response) => { response.writeHead(503); response.end(); };
const server = http.createServer((request, response) => handler(request, response));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

// Origins of the redirect URIs may call the token endpoint from the browser (CORS).
const allowedOrigins = new Set(redirectUris.map((uri) => new URL(uri).origin));

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogoutRedirectUris,
  }],
  jwks: { keys: [signingKey()] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  // `roles` has its own scope, and is also part of `openid` so that it lands in the ID token
  // whatever scopes the console asks for. conformIdTokenClaims: false puts the claims of the
  // granted scopes in the ID token (not only in userinfo), which is what the API validates.
  scopes: ['openid', 'profile', 'roles'],
  claims: {
    openid: ['sub', 'roles'],
    profile: ['name', 'preferred_username'],
    roles: ['roles'],
  },
  conformIdTokenClaims: false,
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, name: sub, preferred_username: sub, roles: rolesOf(sub) };
      },
    };
  },
  // Consent is implied for this first-party client: a grant with the requested scopes is
  // made on the fly, so the consent prompt never shows.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(String(ctx.oidc.params.scope || 'openid'));
    grant.addOIDCClaims(['sub', 'roles', 'name', 'preferred_username']);
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: false }, // our own minimal login page below (no external fonts)
    rpInitiatedLogout: {
      enabled: true,
      // Sign-out ends the session without a confirmation page.
      logoutSource(ctx, form) {
        ctx.type = 'html';
        // logout=yes ends the session at the issuer too (the default page asks with a button).
        const autoSubmit = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
        ctx.body = `<!doctype html><html><body>${autoSubmit}<script>document.forms[0].submit()</script></body></html>`;
      },
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  clientBasedCORS: (_ctx, origin) => allowedOrigins.has(origin),
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><html><body><h1>Sign-in error</h1><pre id="oidc-error">${escapeHtml(JSON.stringify(out, null, 2))}</pre></body></html>`;
  },
});
// Plain HTTP on 127.0.0.1: cookies are set without `Secure` because the request is not
// secure (no `proxy` needed, nothing sits in front of this server).
provider.on('server_error', (_ctx, error) => console.error('server_error', error));
provider.on('authorization.error', (_ctx, error) => console.error('authorization.error', error.message, error.error_description || ''));
provider.on('grant.error', (_ctx, error) => console.error('grant.error', error.message, error.error_description || ''));

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

async function readForm(request) {
  let body = '';
  for await (const chunk of request) body += chunk;
  return new URLSearchParams(body);
}

/** The login page: any password works, the login name is the subject. */
function loginPage(uid, error = '') {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in (test issuer)</title>
<style>body{font-family:sans-serif;max-width:22rem;margin:4rem auto}input,button{display:block;width:100%;margin:.5rem 0;padding:.5rem;box-sizing:border-box}.error{color:#b00}</style>
</head><body>
<h1>Test issuer sign-in</h1>
<p>Any password works; the login name becomes the subject.</p>
${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <input id="login" name="login" type="text" placeholder="login (e.g. admin-user)" required autofocus>
  <input id="password" name="password" type="password" placeholder="any password" autocomplete="current-password" required>
  <button id="submit" type="submit">Sign in</button>
</form>
</body></html>`;
}

/** Our interaction routes; everything else is the provider's. */
async function interaction(request, response, uid, action) {
  const details = await provider.interactionDetails(request, response);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (request.method === 'GET' && !action) {
    if (details.prompt.name === 'login') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      response.end(loginPage(uid));
      return;
    }
    // Any other prompt (consent should not happen, see loadExistingGrant): grant what is missing.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    await provider.interactionFinished(request, response, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    return;
  }
  if (request.method === 'POST' && action === 'login') {
    const form = await readForm(request);
    const login = (form.get('login') || '').trim();
    if (!login) {
      response.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
      response.end(loginPage(uid, 'Enter a login name.'));
      return;
    }
    console.error(`login ${login} roles ${JSON.stringify(rolesOf(login))}`);
    await provider.interactionFinished(request, response, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return;
  }
  response.writeHead(405);
  response.end();
}

const providerCallback = provider.callback();
handler = (request, response) => {
  const match = /^\/interaction\/([^/?]+)(?:\/(login))?(?:\?.*)?$/.exec(request.url);
  if (!match) return providerCallback(request, response);
  interaction(request, response, match[1], match[2]).catch((error) => {
    console.error('interaction failed:', error);
    if (!response.headersSent) {
      response.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
      response.end(`<!doctype html><p class="error">Sign-in failed: ${escapeHtml(error.message)}. Start again from the console.</p>`);
    }
  });
};

console.error(`oidc issuer ${issuer}: client ${clientId}, redirect_uris ${redirectUris.join(' ')}, post_logout_redirect_uris ${postLogoutRedirectUris.join(' ') || '(none)'}`);
process.stdout.write(`ISSUER ${issuer}\n`);

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
