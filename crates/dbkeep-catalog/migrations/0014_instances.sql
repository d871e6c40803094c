-- The instances sharing this catalog: each heartbeats while it serves, saying what it runs.
CREATE TABLE instances (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    running TEXT NOT NULL DEFAULT '[]'
);
