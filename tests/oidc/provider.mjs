// A real OpenID Connect provider on loopback for the sign-in tests: the OpenID-certified
// `oidc-provider` package with its bundled log-in and consent pages, which Chromium fills in.
//
//   node tests/oidc/provider.mjs --port 0 --redirect-uri http://127.0.0.1:8081/accounts/oidc/callback/
//
// Prints one line, `listening http://127.0.0.1:PORT`, once it answers. The tests choose each
// account's claims through two loopback-only control endpoints, served beside the provider:
//   PUT  /__test__/accounts/<login>   body: {"email": ..., "email_verified": ..., "name": ..., "groups": [...]}
//   PUT  /__test__/replay-id-token    body: {"on": true}: answer the next token requests with the
//                                     ID token issued before (another sign-in's nonce), as a replay.
//   PUT  /__test__/rogue-keys         body: {"on": true}: publish a key set that did not sign the
//                                     ID tokens, so a relying party must refuse their signature.
import { generateKeyPairSync } from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'client-id': { type: 'string', default: 'videostudio' },
    'client-secret': { type: 'string', default: 'videostudio-test-secret' },
  },
});

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'signing-key', alg: 'RS256', use: 'sig' };
}

const key = signingKey();
// The same kid as the real key, so a relying party finds it and must check the signature itself.
const rogue = signingKey();
const publicPart = ({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use });
let rogueKeys = false;
let replayIdToken = false;
let lastIdToken;

const accounts = new Map();

const configuration = {
  clients: [
    {
      client_id: values['client-id'],
      client_secret: values['client-secret'],
      redirect_uris: values['redirect-uri'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys: [key] },
  // Claims asked for by scope go into the ID token too, as Keycloak, Entra ID and Okta put them.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
  },
  // Every authorization request must carry an S256 code challenge, or the provider refuses it.
  pkce: { required: () => true, methods: ['S256'] },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['test-only-cookie-key'] },
  async findAccount(ctx, id) {
    if (!accounts.has(id)) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...accounts.get(id) }; } };
  },
};

const server = await new Promise((resolve) => {
  // Listen first to learn the port, then build the provider for that issuer.
  import('node:http').then(({ createServer }) => {
    const srv = createServer();
    srv.listen(Number(values.port), '127.0.0.1', () => resolve(srv));
  });
});
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, configuration);
provider.proxy = false;
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && ctx.body && ctx.body.id_token) {
    const fresh = ctx.body.id_token;
    if (replayIdToken && lastIdToken) ctx.body = { ...ctx.body, id_token: lastIdToken };
    lastIdToken = fresh;
  }
});
const callback = provider.callback();

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => { try { resolve(JSON.parse(body || '{}')); } catch (e) { reject(e); } });
  });
}

server.on('request', async (req, res) => {
  const path = req.url.split('?')[0];
  if (path.startsWith('/__test__/accounts/') && req.method === 'PUT') {
    accounts.set(decodeURIComponent(path.slice('/__test__/accounts/'.length)), await readJson(req));
    res.writeHead(204).end();
  } else if (path === '/__test__/replay-id-token' && req.method === 'PUT') {
    replayIdToken = Boolean((await readJson(req)).on);
    res.writeHead(204).end();
  } else if (path === '/__test__/rogue-keys' && req.method === 'PUT') {
    rogueKeys = Boolean((await readJson(req)).on);
    res.writeHead(204).end();
  } else if (path === '/jwks' && rogueKeys) {
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
    res.end(JSON.stringify({ keys: [publicPart(rogue)] }));
  } else {
    callback(req, res);
  }
});

process.stdout.write(`listening ${issuer}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
