-- Rows of the run's data interval [interval_start, interval_end) in a table loaded per
-- interval (songplays, time: a run replaces its interval's rows), naive UTC timestamps
-- as sparkify.warehouse.interval_parameters builds them. {{ table }}: the table's
-- validated, quoted name (sparkify.sql.render_tables).
SELECT COUNT(*) FROM {{ table }}
WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
