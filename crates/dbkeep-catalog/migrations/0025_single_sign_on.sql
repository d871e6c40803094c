-- Single sign-on: where each user comes from (`local`, or `oidc` for one made at their first
-- login through the provider, who has no password), and logins gone to the provider and not
-- back yet (their state's digest, PKCE verifier and nonce; used once, for minutes).
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
CREATE TABLE oidc_logins (
    state_sha256  TEXT PRIMARY KEY,
    verifier      TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    next          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
