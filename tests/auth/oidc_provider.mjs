// A certified OpenID Provider (the npm package oidc-provider) with a tiny configuration, for the end-to-end
// sign-in tests (tests/auth/conftest.py starts it with Debian's Node).
//
// Environment: OIDC_PORT (listen on 127.0.0.1:OIDC_PORT; the issuer is http://127.0.0.1:OIDC_PORT) and
// OIDC_CLIENTS (JSON: [{client_id, client_secret, redirect_uris}]). Its login form (devInteractions) takes any
// login and password: the account is the login typed, with claims made from it (sub, preferred_username,
// email), so a test chooses who signs in by what it types. PKCE with S256 is required of every client.
// OIDC_PROVIDER_MODULE is the file URL of the installed package's entry point (an ES module is not found
// through NODE_PATH, and the package lives in the npm folder scripts/test fills, not beside this file).
const { default: Provider } = await import(process.env.OIDC_PROVIDER_MODULE);

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]').map((c) => ({
  ...c,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
}));

const provider = new Provider(issuer, {
  clients,
  pkce: { required: () => true, methods: ['S256'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
  },
  // The scope's claims in the ID token itself (an access token for /userinfo is not what the client reads).
  conformIdTokenClaims: false,
  cookies: { keys: ['tenantry-tests-only'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, name: id, preferred_username: `${id}@example.test`, email: `${id}@example.test`,
          email_verified: true,
        };
      },
    };
  },
});

provider.listen(port, '127.0.0.1', () => {
  // The fixture waits for this line before it goes on.
  console.log(`oidc-provider listening on ${issuer}`);
});
