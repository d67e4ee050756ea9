-- Each user's latest play in the interval, from the rows this run staged: the interval's
-- rows of users_history (which the users load replaces per interval, then rebuilds users
-- from; see users.sql). The
-- same rows upserted into users with last_play_at as the version (the upsert mode) keep
-- the latest play whatever order intervals load in, but never forget a removed play.
WITH ranked AS (
    SELECT e.*,
           ROW_NUMBER() OVER (
               PARTITION BY e.userid ORDER BY e.ts DESC, e.sessionid DESC, e.iteminsession DESC
           ) AS recency
    FROM {{ staging_events }} e
    WHERE e.run_id = %(run_id)s AND e.page = 'NextSong' AND e.userid <> ''
      AND e.ts >= %(interval_start_ms)s AND e.ts < %(interval_end_ms)s
)
SELECT CAST(userid AS INTEGER)                                  AS user_id,
       firstname                                                AS first_name,
       lastname                                                 AS last_name,
       gender                                                   AS gender,
       level                                                    AS level,
       TIMESTAMP 'epoch' + ts / 1000.0 * INTERVAL '1 second'    AS last_play_at
FROM ranked
WHERE recency = 1
