-- One row per artist id. An artist's name, location and coordinates may differ between
-- its songs: keep the most complete record, ties broken by song id, so every run agrees.
WITH ranked AS (
    SELECT s.*,
           ROW_NUMBER() OVER (
               PARTITION BY s.artist_id
               ORDER BY CASE WHEN s.artist_location <> '' THEN 0 ELSE 1 END,
                        CASE WHEN s.artist_latitude IS NOT NULL THEN 0 ELSE 1 END,
                        s.song_id
           ) AS completeness_rank
    FROM {{ staging_songs }} s
    WHERE s.artist_id IS NOT NULL
)
SELECT artist_id,
       artist_name                     AS name,
       NULLIF(artist_location, '')     AS location,
       artist_latitude                 AS latitude,
       artist_longitude                AS longitude
FROM ranked
WHERE completeness_rank = 1
