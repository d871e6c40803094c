-- Every verification of a backup (checksum, readable or restore level) and its result; the
-- latest one is also kept on the backup's row, so listing backups needs no join.
CREATE TABLE verifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    backup_id    INTEGER NOT NULL REFERENCES backups (id),
    level        TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('ok', 'failed')),
    message      TEXT,
    started_at   TEXT    NOT NULL,
    finished_at  TEXT    NOT NULL,
    restore_ms   INTEGER
);

CREATE INDEX verifications_by_backup ON verifications (backup_id, id);

ALTER TABLE backups ADD COLUMN verified_at TEXT;
ALTER TABLE backups ADD COLUMN verify_level TEXT;
ALTER TABLE backups ADD COLUMN verify_status TEXT;
ALTER TABLE backups ADD COLUMN verify_error TEXT;
