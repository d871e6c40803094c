-- Leases: which instance runs what (a database's backups, say), until when by the catalog's
-- clock, and the run they cover; they replace the lock files beside the catalog, so that
-- several instances on several machines can share one catalog.
CREATE TABLE leases (
    resource TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    run INTEGER,
    acquired_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
