-- A run's first rejected records (as many as the limit), by table, file and line (the
-- rejects table's validated, quoted name is formatted in).
SELECT table_name, source_key, line_number, reason
FROM {rejects}
WHERE run_id = %(run_id)s
ORDER BY table_name, source_key, line_number
LIMIT %(limit)s
