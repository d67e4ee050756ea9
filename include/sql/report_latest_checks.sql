-- The quality checks of the latest execution of the checks, whatever the run (a re-run
-- records its checks again): what `make run` prints after the backfill.
SELECT run_id, check_name, table_name, passed, observed, expected
FROM data_quality_results
WHERE checked_at = (SELECT MAX(checked_at) FROM data_quality_results)
ORDER BY check_name
