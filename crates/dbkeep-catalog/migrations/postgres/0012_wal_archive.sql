-- PostgreSQL's archived WAL: every file a server's archive_command handed over (its SHA-256
-- before compression, so that the same file pushed again is told from a different one), the
-- sends still owed to each off-site destination, the cluster each server's archive belongs
-- to, and where each base backup sits in the log.
CREATE TABLE wal_segments (
    server        text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    sha256        text NOT NULL,
    raw_bytes     bigint NOT NULL,
    stored_bytes  bigint NOT NULL,
    compression   text NOT NULL,
    encrypted     boolean NOT NULL,
    archived_at   timestamptz,
    PRIMARY KEY (server, name)
);
CREATE TABLE wal_queue (
    server       text COLLATE "C" NOT NULL,
    name         text COLLATE "C" NOT NULL,
    destination  text COLLATE "C" NOT NULL,
    PRIMARY KEY (server, destination, name)
);
CREATE TABLE wal_systems (
    server             text COLLATE "C" PRIMARY KEY,
    system_identifier  text NOT NULL
);
CREATE TABLE base_backups (
    backup_id   bigint PRIMARY KEY REFERENCES backups (id),
    server      text COLLATE "C" NOT NULL,
    timeline    integer NOT NULL,
    start_lsn   bigint NOT NULL,
    start_wal   text NOT NULL,
    stop_lsn    bigint NOT NULL,
    stopped_at  timestamptz NOT NULL
);
CREATE INDEX base_backups_server ON base_backups (server, stopped_at);
