-- Two-factor login: each user's TOTP secret (enrolled once confirmed), the last time step a
-- code was accepted for (a code is never accepted twice), one-time recovery codes (as SHA-256
-- digests: they are random, like API tokens), and logins waiting for their second factor.
ALTER TABLE users ADD COLUMN totp_secret text, ADD COLUMN totp_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0;
CREATE TABLE recovery_codes (
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_sha256  text NOT NULL,
    used_at      timestamptz,
    PRIMARY KEY (user_id, code_sha256)
);
CREATE TABLE pending_logins (
    token_sha256  text PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
