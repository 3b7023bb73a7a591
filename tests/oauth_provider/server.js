// A real OAuth2 / OpenID Connect authorization server on 127.0.0.1, for end-to-end tests only.
//
// The client side of futurnal's OAuth2 support (PKCE, state, loopback callback, refresh,
// revocation) is only worth testing against a server that enforces the protocol, so this is
// `oidc-provider` (a certified implementation) with what its development defaults leave out:
// a login page that checks the password (its built-in one accepts anyone), a consent page,
// PKCE required for every client, introspection for Dovecot's oauth2 passdb and revocation.
//
// Usage: node server.js CONFIG.json
//   CONFIG: {"users": {"EMAIL": "PASSWORD"}, "clients": [<client metadata>],
//            "introspectors": ["CLIENT_ID"], "access_token_ttl": SECONDS}
// It listens on a free port of 127.0.0.1 and prints one JSON line, {"issuer": URL}, when ready.
// SIGTERM stops it.

import { generateKeyPairSync, randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(Object.entries(config.users));
// Clients that may introspect (Dovecot), and only access tokens: a refresh token is none of
// an IMAP server's business.
const introspectors = new Set(config.introspectors || []);

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function passwordMatches(email, password) {
  const expected = users.get(email);
  if (expected === undefined) return false;
  const digest = (text) => createHash('sha256').update(String(text)).digest();
  return timingSafeEqual(digest(expected), digest(password));
}

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>`
    + `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`);
}

function loginPage(res, uid, clientId, error, status = 200) {
  page(res, status, 'Sign in', `
    <p>Sign in to let <b>${escapeHtml(clientId)}</b> read your mail.</p>
    ${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
    <form method="post" action="/interaction/${escapeHtml(uid)}/login">
      <label>E-mail <input name="login" type="email" autofocus></label>
      <label>Password <input name="password" type="password"></label>
      <button type="submit">Sign in</button>
    </form>`);
}

function consentPage(res, uid, clientId, details) {
  const scopes = details.missingOIDCScope || [];
  page(res, 200, 'Allow access', `
    <p><b>${escapeHtml(clientId)}</b> asks for:</p>
    <ul>${scopes.map((s) => `<li class="scope">${escapeHtml(s)}</li>`).join('')}</ul>
    <form method="post" action="/interaction/${escapeHtml(uid)}/confirm">
      <button type="submit">Allow</button>
    </form>
    <a href="/interaction/${escapeHtml(uid)}/abort">Deny</a>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 65536) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');
  const { prompt, params } = details;
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return loginPage(res, uid, params.client_id);
    if (prompt.name === 'consent') return consentPage(res, uid, params.client_id, prompt.details);
    return page(res, 400, 'Unexpected prompt', `<p>${escapeHtml(prompt.name)}</p>`);
  }
  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const email = form.get('login') || '';
    if (!passwordMatches(email, form.get('password') || '')) {
      return loginPage(res, uid, params.client_id, 'Wrong e-mail address or password.', 401);
    }
    return provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
    await readForm(req);
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'GET' && action === 'abort') {
    const result = { error: 'access_denied', error_description: 'the user denied access' };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  return page(res, 405, 'Not allowed here', '');
}

function signingKeys() {
  // Fresh keys per run: ID tokens are signed, and nothing outlives the test that started us.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test', alg: 'RS256', use: 'sig' }] };
}

function providerFor(issuer) {
  return new Provider(issuer, {
    clients: config.clients,
    cookies: { keys: [randomBytes(32).toString('hex')] },
    jwks: signingKeys(),
    scopes: ['openid', 'email', 'offline_access', 'imap'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => (introspectors.has(client.clientId)
          ? token.kind === 'AccessToken'
          : token.clientId === client.clientId),
      },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    ttl: {
      AccessToken: config.access_token_ttl || 60,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 86400,
      RefreshToken: 86400,
    },
    async findAccount(ctx, id) {
      if (!users.has(id)) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, email: id, email_verified: true }) };
    },
    // Dovecot's oauth2 passdb takes the login name from the introspection answer.
    extraTokenClaims: async (ctx, token) => (token.kind === 'AccessToken' ? { email: token.accountId } : undefined),
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><head><title>OAuth error</title></head><body><h1>OAuth error</h1>${
        Object.entries(out).map(([k, v]) => `<p class="${escapeHtml(k)}">${escapeHtml(v)}</p>`).join('')}</body></html>`;
    },
  });
}

let provider;
let handleProtocol;
const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(new URL(req.url, 'http://x').pathname);
  if (!match) return handleProtocol(req, res);
  try {
    return await interaction(provider, req, res, match[1], match[2]);
  } catch (err) {
    const expired = err instanceof errors.SessionNotFound;
    return page(res, expired ? 400 : 500, expired ? 'Sign-in expired' : 'Error', `<p>${escapeHtml(err.message)}</p>`);
  }
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = providerFor(issuer);
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  handleProtocol = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
