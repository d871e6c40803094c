-- A counter raised in the same transaction as every change to what a database's verdict is
-- judged from (its backups, their off-site copies, their verifications). A reader that kept
-- what it read under the counter's value can tell, with one small read, whether the catalog
-- still holds the same: the home page with many databases reads the history only when it
-- changed.
CREATE TABLE catalog_stamp (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO catalog_stamp (id, n) VALUES (1, 0);
CREATE TRIGGER backups_stamp_insert AFTER INSERT ON backups BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER backups_stamp_update AFTER UPDATE ON backups BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER backups_stamp_delete AFTER DELETE ON backups BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER copies_stamp_insert AFTER INSERT ON copies BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER copies_stamp_update AFTER UPDATE ON copies BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER copies_stamp_delete AFTER DELETE ON copies BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER verifications_stamp_insert AFTER INSERT ON verifications BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER verifications_stamp_update AFTER UPDATE ON verifications BEGIN UPDATE catalog_stamp SET n = n + 1; END;
CREATE TRIGGER verifications_stamp_delete AFTER DELETE ON verifications BEGIN UPDATE catalog_stamp SET n = n + 1; END;
