-- Off-site copies of each backup: one row per backup and destination.
CREATE TABLE copies (
    backup_id INTEGER NOT NULL REFERENCES backups (id),
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    size_bytes INTEGER,
    sha256 TEXT,
    state TEXT NOT NULL,
    error TEXT,
    uploaded_at TEXT,
    pruned_at TEXT,
    PRIMARY KEY (backup_id, store)
);
