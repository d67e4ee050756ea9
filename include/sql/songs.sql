-- One row per song id (a song file staged twice counts once); year 0 means unknown.
WITH ranked AS (
    SELECT s.*,
           ROW_NUMBER() OVER (PARTITION BY s.song_id ORDER BY s.title, s.duration) AS copy_number
    FROM {{ staging_songs }} s
    WHERE s.song_id IS NOT NULL
)
SELECT song_id, title, artist_id, NULLIF(year, 0) AS year, duration
FROM ranked
WHERE copy_number = 1
