-- Which instance made each backup (its file is on that instance's disk), and which instance
-- claimed each fire (so that a fire whose instance died is finished by another).
ALTER TABLE backups ADD COLUMN instance TEXT;
ALTER TABLE fires ADD COLUMN claimed_by TEXT;
