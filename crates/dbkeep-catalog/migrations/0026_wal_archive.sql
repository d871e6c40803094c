-- PostgreSQL's archived WAL: every file a server's archive_command handed over (its SHA-256
-- before compression, so that the same file pushed again is told from a different one), the
-- sends still owed to each off-site destination, the cluster each server's archive belongs
-- to, and where each base backup sits in the log.
CREATE TABLE wal_segments (
    server        TEXT NOT NULL,
    name          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    raw_bytes     INTEGER NOT NULL,
    stored_bytes  INTEGER NOT NULL,
    compression   TEXT NOT NULL,
    encrypted     INTEGER NOT NULL,
    archived_at   TEXT,
    PRIMARY KEY (server, name)
);
CREATE TABLE wal_queue (
    server       TEXT NOT NULL,
    name         TEXT NOT NULL,
    destination  TEXT NOT NULL,
    PRIMARY KEY (server, destination, name)
);
CREATE TABLE wal_systems (
    server             TEXT PRIMARY KEY,
    system_identifier  TEXT NOT NULL
);
CREATE TABLE base_backups (
    backup_id   INTEGER PRIMARY KEY REFERENCES backups (id),
    server      TEXT NOT NULL,
    timeline    INTEGER NOT NULL,
    start_lsn   INTEGER NOT NULL,
    start_wal   TEXT NOT NULL,
    stop_lsn    INTEGER NOT NULL,
    stopped_at  TEXT NOT NULL
);
CREATE INDEX base_backups_server ON base_backups (server, stopped_at);
