-- The server's roles, stored beside a PostgreSQL backup when its database says `globals = true`:
-- the name of that second file in the backup's folder.
ALTER TABLE backups ADD COLUMN globals_file TEXT;
