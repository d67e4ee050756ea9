-- Data quality: the interval's rows of time (observed) and the distinct start times of
-- the interval's plays (expected). With every play's start time in time (the foreign-key
-- check), equal counts mean time holds no start time of a play that is gone. The tables
-- are placeholders filled with validated, quoted names.
SELECT (SELECT COUNT(*) FROM {{ time }}
         WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s),
       (SELECT COUNT(DISTINCT start_time) FROM {{ songplays }}
         WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s)
