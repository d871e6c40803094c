-- Pins: a pinned backup is never pruned from any destination, whatever the policy; its note
-- says why, in the words of whoever pinned it.
ALTER TABLE backups ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE backups ADD COLUMN pin_note TEXT;
-- The policy, in words, that the last prune of each database at each destination (`local`, or
-- an off-site destination's name) applied: a prune under another policy, or the first one,
-- can be told apart.
CREATE TABLE retention_marks (
    database TEXT NOT NULL,
    destination TEXT NOT NULL,
    policy TEXT NOT NULL,
    marked_at TEXT NOT NULL,
    PRIMARY KEY (database, destination)
);
