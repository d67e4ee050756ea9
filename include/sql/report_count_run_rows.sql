-- Rows of this run in a table that keeps each run's rows apart (staging_events): other
-- runs' rows are not counted. {{ table }}: the table's validated, quoted name
-- (sparkify.sql.render_tables); the run id is a bind parameter.
SELECT COUNT(*) FROM {{ table }} WHERE run_id = %(run_id)s
