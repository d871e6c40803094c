-- Each backup's tables with their row counts, taken while it was made: a restore is checked
-- against them.
CREATE TABLE backup_tables (
    backup_id  INTEGER NOT NULL REFERENCES backups (id),
    name       TEXT    NOT NULL,
    rows       INTEGER NOT NULL,
    PRIMARY KEY (backup_id, name)
);
