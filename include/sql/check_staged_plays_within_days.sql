-- Data quality: NextSong events this run staged whose ts lies outside the days of the
-- interval's log files (the interval for a daily run, its day for an hourly one); 0 when none. Such
-- a play is in no interval the file is loaded for: the fact load would drop it without a
-- trace. The staging table is a placeholder filled with its validated, quoted name.
SELECT COUNT(*) FROM {{ staging_events }}
WHERE run_id = %(run_id)s AND page = 'NextSong'
  AND (ts < %(days_start_ms)s OR ts >= %(days_end_ms)s)
