-- The plays (NextSong events) of the run's data interval, from the rows this run staged
-- (other runs' rows stay out, whatever runs at the same time), one row per event: the same
-- event delivered twice, identified by (userid, sessionid, iteminsession), counts once.
-- A play matches a song on title, artist name and duration; unmatched plays keep NULL ids.
WITH plays AS (
    SELECT e.*,
           ROW_NUMBER() OVER (
               PARTITION BY e.userid, e.sessionid, e.iteminsession ORDER BY e.ts
           ) AS copy_number
    FROM {{ staging_events }} e
    WHERE e.run_id = %(run_id)s AND e.page = 'NextSong'
      AND e.ts >= %(interval_start_ms)s AND e.ts < %(interval_end_ms)s
),
song_keys AS (
    SELECT song_id, artist_id, title, artist_name, duration,
           ROW_NUMBER() OVER (
               PARTITION BY title, artist_name, duration ORDER BY song_id
           ) AS song_rank
    FROM {{ staging_songs }}
)
SELECT MD5(p.userid || '-' || CAST(p.sessionid AS VARCHAR(16))
           || '-' || CAST(p.iteminsession AS VARCHAR(16)))          AS songplay_id,
       TIMESTAMP 'epoch' + p.ts / 1000.0 * INTERVAL '1 second'      AS start_time,
       CAST(NULLIF(p.userid, '') AS INTEGER)                        AS user_id,
       p.level                                                      AS level,
       s.song_id                                                    AS song_id,
       s.artist_id                                                  AS artist_id,
       p.sessionid                                                  AS session_id,
       p.location                                                   AS location,
       TRIM(BOTH '"' FROM p.useragent)                              AS user_agent
FROM plays p
LEFT JOIN song_keys s
       ON s.song_rank = 1
      AND s.title = p.song
      AND s.artist_name = p.artist
      AND s.duration = p.length
WHERE p.copy_number = 1
