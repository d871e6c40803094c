-- What discovery saw of each [[servers]] entry: every database a server showed, by dbkeep's
-- name for it, and how each server answered last. A change of a database's state raises the
-- catalog's stamp: the verdicts are judged from it.
CREATE TABLE discovered (
    name TEXT PRIMARY KEY,
    server TEXT NOT NULL,
    database TEXT NOT NULL,
    state TEXT NOT NULL,
    found_at TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    detail TEXT
);
CREATE TABLE server_checks (
    server TEXT PRIMARY KEY,
    checked_at TEXT NOT NULL,
    error TEXT
);
CREATE TRIGGER discovered_stamp_insert AFTER INSERT ON discovered BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER discovered_stamp_update AFTER UPDATE ON discovered BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER discovered_stamp_delete AFTER DELETE ON discovered BEGIN UPDATE catalog_stamp SET n = n + 1; END;
