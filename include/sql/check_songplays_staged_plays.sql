-- Data quality: the interval's plays in the fact table (observed) and the plays staging
-- counted for it (expected): the sum over the staging_counts rows of this run's log
-- files (one row per object and UTC hour, written when the run staged them) whose hour
-- lies in the interval. Counted at staging time, not with the fact query's filter or key,
-- so a fact load that loses, doubles or misplaces plays disagrees; hourly and daily
-- intervals alike. The tables are placeholders filled with validated, quoted names.
SELECT (SELECT COUNT(*) FROM {{ songplays }}
         WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s),
       (SELECT COALESCE(SUM(plays), 0) FROM {{ staging_counts }}
         WHERE table_name = 'staging_events' AND run_id = %(run_id)s
           AND hour_start >= %(interval_start)s AND hour_start < %(interval_end)s)
