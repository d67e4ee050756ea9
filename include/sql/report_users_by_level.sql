-- sparkify_daily_report: active users and plays per level on the latest day with plays.
-- Level at the time of the play: a user who upgraded during the day counts in both.
WITH latest AS (SELECT CAST(MAX(start_time) AS DATE) AS day FROM {{ songplays }})
SELECT latest.day AS day,
       sp.level,
       COUNT(DISTINCT sp.user_id) AS active_users,
       COUNT(*) AS plays
FROM {{ songplays }} AS sp
JOIN latest ON CAST(sp.start_time AS DATE) = latest.day
GROUP BY latest.day, sp.level
