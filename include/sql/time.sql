-- One row per distinct play start time of the interval's plays (loaded before this runs).
-- Loaded by interval-replace: the interval's rows become exactly these, so the start time
-- of a play a re-run removed goes with it.
SELECT DISTINCT
       start_time,
       CAST(EXTRACT(hour FROM start_time) AS SMALLINT)   AS hour,
       CAST(EXTRACT(day FROM start_time) AS SMALLINT)    AS day,
       CAST(EXTRACT(week FROM start_time) AS SMALLINT)   AS week,
       CAST(EXTRACT(month FROM start_time) AS SMALLINT)  AS month,
       CAST(EXTRACT(year FROM start_time) AS SMALLINT)   AS year,
       CAST(EXTRACT(dow FROM start_time) AS SMALLINT)    AS weekday
FROM {{ songplays }}
WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s
