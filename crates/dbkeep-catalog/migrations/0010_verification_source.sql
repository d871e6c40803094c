-- Which copy a verification read: NULL for the local file, else an off-site destination's name.
ALTER TABLE verifications ADD COLUMN source TEXT;
