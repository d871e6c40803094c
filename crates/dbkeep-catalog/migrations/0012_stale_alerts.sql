-- Databases announced stale, with the last success they were judged by: each episode is
-- announced once, also across restarts of the service.
CREATE TABLE stale_alerts (
    database TEXT PRIMARY KEY,
    last_success TEXT,
    announced_at TEXT NOT NULL
);
