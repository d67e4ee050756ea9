-- A run's quality check results, failed first, of its latest attempt only: one execution
-- of the checks records all its rows with one checked_at. The results table's validated,
-- quoted name is formatted in.
SELECT check_name, table_name, passed, observed, expected
FROM {results}
WHERE run_id = %(run_id)s
  AND checked_at = (SELECT MAX(checked_at) FROM {results} WHERE run_id = %(run_id)s)
ORDER BY passed, table_name, check_name
