-- Data quality: the interval's plays in the fact table minus the interval's distinct
-- NextSong events in staging; 0 when nothing was lost (or duplicated) between the stages.
-- The two tables are placeholders in curly brackets that sparkify.checks fills with
-- validated, quoted "schema"."table" names (str.format with sparkify.sql.qualified).
SELECT (SELECT COUNT(*) FROM {songplays}
         WHERE start_time >= %(interval_start)s AND start_time < %(interval_end)s)
     - (SELECT COUNT(*) FROM (
            SELECT DISTINCT userid, sessionid, iteminsession FROM {staging_events}
             WHERE page = 'NextSong'
               AND ts >= %(interval_start_ms)s AND ts < %(interval_end_ms)s) AS plays)
