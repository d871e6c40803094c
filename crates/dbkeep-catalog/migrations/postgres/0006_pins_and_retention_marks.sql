-- Pins: a pinned backup is never pruned from any destination, whatever the policy; its note
-- says why, in the words of whoever pinned it.
ALTER TABLE backups ADD COLUMN pinned boolean NOT NULL DEFAULT false;
ALTER TABLE backups ADD COLUMN pin_note text;
-- The policy, in words, that the last prune of each database at each destination (`local`, or
-- an off-site destination's name) applied: a prune under another policy, or the first one,
-- can be told apart. Names sort byte-wise, as in SQLite.
CREATE TABLE retention_marks (
    database     text COLLATE "C" NOT NULL,
    destination  text COLLATE "C" NOT NULL,
    policy       text NOT NULL,
    marked_at    timestamptz NOT NULL,
    PRIMARY KEY (database, destination)
);
