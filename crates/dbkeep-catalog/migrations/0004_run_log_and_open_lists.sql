-- Each run keeps its log (the database tool's messages and dbkeep's steps), and `kind` and
-- `trigger` lose their CHECK lists: SQLite cannot change a CHECK in place, so every new kind
-- (mysql) or trigger (web, import, verify) would mean rebuilding the table. dbkeep validates both
-- when it reads a row. The table is rebuilt this once, keeping every row and id.
CREATE TABLE backups_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    database      TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('in_progress', 'success', 'failed')),
    trigger       TEXT    NOT NULL,
    file_name     TEXT,
    path          TEXT,
    size_bytes    INTEGER,
    sha256        TEXT,
    compression   TEXT    NOT NULL,
    started_at    TEXT    NOT NULL,
    finished_at   TEXT,
    duration_ms   INTEGER,
    error         TEXT,
    pruned_at     TEXT,
    log           TEXT
);

INSERT INTO backups_new (id, database, kind, status, trigger, file_name, path, size_bytes, sha256,
                         compression, started_at, finished_at, duration_ms, error, pruned_at)
SELECT id, database, kind, status, trigger, file_name, path, size_bytes, sha256,
       compression, started_at, finished_at, duration_ms, error, pruned_at
FROM backups;

DROP TABLE backups;
ALTER TABLE backups_new RENAME TO backups;

CREATE INDEX backups_by_database ON backups (database, id);
CREATE INDEX backups_by_status ON backups (status, id);
