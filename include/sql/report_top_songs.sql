-- sparkify_daily_report: the 10 most played songs the catalogue knows (unmatched plays
-- have no title to show) on the latest day with plays. Loads may arrive in any order:
-- the report always covers the newest day the warehouse holds. Astro SDK renders the
-- Table arguments in double braces (songplays, songs, artists) as qualified names.
WITH latest AS (SELECT CAST(MAX(start_time) AS DATE) AS day FROM {{ songplays }})
SELECT latest.day AS day,
       ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC, s.title, sp.song_id) AS song_rank,
       sp.song_id,
       s.title,
       a.name AS artist,
       COUNT(*) AS plays,
       COUNT(DISTINCT sp.user_id) AS listeners
FROM {{ songplays }} AS sp
JOIN latest ON CAST(sp.start_time AS DATE) = latest.day
JOIN {{ songs }} AS s ON s.song_id = sp.song_id
LEFT JOIN {{ artists }} AS a ON a.artist_id = sp.artist_id
GROUP BY latest.day, sp.song_id, s.title, a.name
ORDER BY song_rank
LIMIT 10
