// An OpenID Connect provider for the tests (npm oidc-provider), on 127.0.0.1:$PORT.
// Accounts and their groups come from $OIDC_ACCOUNTS (JSON: {"alice": ["dbkeep-admins"]});
// its signing key is new at each start, named $OIDC_KID (a restart with another kid is a key
// rotation). GET /test/mode?set=MODE makes the token endpoint hand out a bad ID token:
// "tamper" (a claim changed after signing), "audience", "nonce" or "expired" (re-signed
// with that claim wrong); "" goes back to good tokens.
import crypto from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.OIDC_PROVIDER_DIR;
const { default: Provider } = await import(
  pathToFileURL(path.join(dir, 'node_modules/oidc-provider/lib/index.js')).href
);
const port = Number(process.env.PORT);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');
const kid = process.env.OIDC_KID || 'key-1';
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'dbkeep',
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: [process.env.OIDC_REDIRECT],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  jwks: { keys: [jwk] },
  claims: { openid: ['sub'], profile: ['preferred_username'], groups: ['groups'] },
  scopes: ['openid', 'profile', 'groups'],
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, groups: accounts[id] || [] };
      },
    };
  },
});

const b64 = (buf) => Buffer.from(buf).toString('base64url');
const sign = (header, payload) => {
  const data = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
  return `${data}.${b64(crypto.sign('sha256', Buffer.from(data), privateKey))}`;
};
let mode = '';
const spoil = (token) => {
  const [h, p, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'tamper':
      return `${h}.${b64(JSON.stringify({ ...payload, sub: 'someone-else' }))}.${s}`;
    case 'audience':
      return sign(header, { ...payload, aud: 'another-client' });
    case 'nonce':
      return sign(header, { ...payload, nonce: 'forged' });
    case 'expired':
      return sign(header, { ...payload, iat: now - 7200, exp: now - 3600 });
    default:
      return token;
  }
};
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/mode') {
    mode = ctx.query.set || '';
    ctx.body = `mode ${mode || 'good'}`;
    return;
  }
  await next();
  if (ctx.path === '/token' && mode && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: spoil(ctx.body.id_token) };
  }
});
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${port}`));
