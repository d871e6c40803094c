-- Two-factor login: each user's TOTP secret (enrolled once confirmed), the last time step a
-- code was accepted for (a code is never accepted twice), one-time recovery codes (as SHA-256
-- digests: they are random, like API tokens), and logins waiting for their second factor.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
CREATE TABLE recovery_codes (
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_sha256  TEXT    NOT NULL,
    used_at      TEXT,
    PRIMARY KEY (user_id, code_sha256)
);
CREATE TABLE pending_logins (
    token_sha256  TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT    NOT NULL,
    expires_at    TEXT    NOT NULL
);
