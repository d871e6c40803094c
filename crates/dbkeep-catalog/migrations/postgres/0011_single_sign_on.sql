-- Single sign-on: where each user comes from (`local`, or `oidc` for one made at their first
-- login through the provider, who has no password), and logins gone to the provider and not
-- back yet (their state's digest, PKCE verifier and nonce; used once, for minutes).
ALTER TABLE users ADD COLUMN source text NOT NULL DEFAULT 'local';
CREATE TABLE oidc_logins (
    state_sha256  text PRIMARY KEY,
    verifier      text NOT NULL,
    nonce         text NOT NULL,
    next          text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
