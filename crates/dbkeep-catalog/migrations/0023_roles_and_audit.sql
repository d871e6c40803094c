-- Roles and database scopes for users and API tokens, token expiry, and the audit log.
-- Users and tokens made before roles could do everything: they stay admins.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE users ADD COLUMN databases TEXT;
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_tokens ADD COLUMN databases TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;

-- One row per security-relevant act, timed by the catalog's clock. Rows cannot be changed,
-- and cannot be deleted before they are 30 days old (audit_retention prunes older ones).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    source      TEXT,
    user_agent  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: its rows cannot be changed');
END;
CREATE TRIGGER audit_log_no_early_delete BEFORE DELETE ON audit_log
    WHEN old.at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days')
BEGIN
    SELECT RAISE(ABORT, 'the audit log keeps its rows for at least 30 days');
END;
