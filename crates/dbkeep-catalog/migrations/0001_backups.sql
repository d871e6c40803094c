-- One row per backup attempt; rows outlive their files (pruned_at), so history is never lost.
CREATE TABLE backups (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    database      TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('sqlite', 'postgres')),
    status        TEXT    NOT NULL CHECK (status IN ('in_progress', 'success', 'failed')),
    trigger       TEXT    NOT NULL CHECK (trigger IN ('manual', 'scheduled', 'api')),
    file_name     TEXT,
    path          TEXT,
    size_bytes    INTEGER,
    sha256        TEXT,
    compression   TEXT    NOT NULL,
    started_at    TEXT    NOT NULL,
    finished_at   TEXT,
    duration_ms   INTEGER,
    error         TEXT,
    pruned_at     TEXT
);

CREATE INDEX backups_by_database ON backups (database, id);
CREATE INDEX backups_by_status ON backups (status, id);
