-- Failed logins per key (`user:NAME`, `addr:IP`), so that several instances sharing the
-- catalog throttle logins together.
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);
