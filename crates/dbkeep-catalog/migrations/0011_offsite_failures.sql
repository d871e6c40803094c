-- Every off-site copy that failed after its tries, kept (a later success does not erase it):
-- /metrics counts them per destination.
CREATE TABLE offsite_failures (
    id INTEGER PRIMARY KEY,
    store TEXT NOT NULL,
    backup_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    error TEXT NOT NULL
);
