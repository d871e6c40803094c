-- What discovery saw of each [[servers]] entry: every database a server showed, by dbkeep's
-- name for it, and how each server answered last. A change of a database's state raises the
-- catalog's stamp: the verdicts are judged from it.
CREATE TABLE discovered (
    name        text COLLATE "C" PRIMARY KEY,
    server      text COLLATE "C" NOT NULL,
    database    text NOT NULL,
    state       text NOT NULL,
    found_at    timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL,
    detail      text
);
CREATE TABLE server_checks (
    server      text COLLATE "C" PRIMARY KEY,
    checked_at  timestamptz NOT NULL,
    error       text
);
CREATE TRIGGER discovered_stamp BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON discovered
    FOR EACH STATEMENT EXECUTE FUNCTION dbkeep_raise_stamp();
