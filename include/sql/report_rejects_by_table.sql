-- A run's rejected records per staging table (the rejects table's validated, quoted name
-- is formatted in).
SELECT table_name, COUNT(*)
FROM {rejects}
WHERE run_id = %(run_id)s
GROUP BY table_name
