-- One row per scheduled fire: the job history. The unique key is what makes a fire run
-- exactly once when several dbkeep processes share this catalog: the first to insert wins.
CREATE TABLE fires (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    database    TEXT    NOT NULL,
    schedule    TEXT    NOT NULL,
    planned_at  TEXT    NOT NULL,
    started_at  TEXT,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('running', 'ran', 'skipped', 'missed')),
    backup_id   INTEGER REFERENCES backups (id),
    detail      TEXT,
    UNIQUE (database, schedule, planned_at)
);

CREATE INDEX fires_by_database ON fires (database, schedule, planned_at);
