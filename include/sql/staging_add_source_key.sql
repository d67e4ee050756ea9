-- The object column, for a staging table created before its rows named their object:
-- CREATE TABLE IF NOT EXISTS leaves an existing table as it is, and Redshift has no
-- ADD COLUMN IF NOT EXISTS, so staging runs this only when information_schema shows the
-- column missing. The staging table is a placeholder filled with its validated, quoted name.
ALTER TABLE {{ staging }} ADD COLUMN source_key VARCHAR(1024)
