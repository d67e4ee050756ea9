-- The attempt column, for a results table created before attempts were recorded (its old
-- rows get NULL): CREATE TABLE IF NOT EXISTS leaves an existing table as it is, and
-- Redshift has no ADD COLUMN IF NOT EXISTS, so DataQualityOperator runs this only when
-- information_schema shows the column missing. The results table is a placeholder filled
-- with its validated, quoted name.
ALTER TABLE {{ results }} ADD COLUMN try_number INTEGER
