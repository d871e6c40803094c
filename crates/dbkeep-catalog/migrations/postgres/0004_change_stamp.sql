-- A counter raised in the same transaction as every change to what a database's verdict is
-- judged from (its backups, their off-site copies, their verifications). A reader that kept
-- what it read under the counter's value can tell, with one small read, whether the catalog
-- still holds the same: the home page with many databases reads the history only when it
-- changed.
--
-- The counter's row is taken BEFORE each statement, ahead of the rows the statement locks, so
-- every writer of these tables locks in the same order (the counter, then rows) and two of
-- them cannot deadlock on it.
CREATE TABLE catalog_stamp (
    id integer PRIMARY KEY CHECK (id = 1),
    n bigint NOT NULL
);
INSERT INTO catalog_stamp (id, n) VALUES (1, 0);
CREATE FUNCTION dbkeep_raise_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_stamp SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER backups_stamp BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON backups
    FOR EACH STATEMENT EXECUTE FUNCTION dbkeep_raise_stamp();
CREATE TRIGGER copies_stamp BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON copies
    FOR EACH STATEMENT EXECUTE FUNCTION dbkeep_raise_stamp();
CREATE TRIGGER verifications_stamp BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON verifications
    FOR EACH STATEMENT EXECUTE FUNCTION dbkeep_raise_stamp();
