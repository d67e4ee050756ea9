-- The users dimension from users_history: each user's row of their latest play over every
-- interval loaded. Rebuilt whole after each interval's history is replaced, so a re-run
-- with corrected data leaves users as one pass over the corrected files would: a user
-- whose latest play was removed gets the earlier one back, a user with no play left is
-- gone. (user_id, last_play_at) is the history's key: no ties.
WITH ranked AS (
    SELECT h.*,
           ROW_NUMBER() OVER (PARTITION BY h.user_id ORDER BY h.last_play_at DESC) AS recency
    FROM {{ users_history }} h
)
SELECT user_id, first_name, last_name, gender, level, last_play_at
FROM ranked
WHERE recency = 1
