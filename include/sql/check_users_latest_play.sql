-- Data quality: users whose row is not their latest play; 0 when none. Counted are the
-- users whose last_play_at lies in the interval but names no play of theirs at that time
-- with that level (a play since removed or changed), and the users with a play in the
-- interval later than their last_play_at. The tables are placeholders filled with
-- validated, quoted names.
SELECT (SELECT COUNT(*) FROM {{ users }} u
         WHERE u.last_play_at >= %(interval_start)s AND u.last_play_at < %(interval_end)s
           AND NOT EXISTS (SELECT 1 FROM {{ songplays }} s
                            WHERE s.user_id = u.user_id AND s.start_time = u.last_play_at
                              AND s.level = u.level))
     + (SELECT COUNT(DISTINCT s.user_id) FROM {{ songplays }} s
          JOIN {{ users }} u ON u.user_id = s.user_id
         WHERE s.start_time >= %(interval_start)s AND s.start_time < %(interval_end)s
           AND s.start_time > u.last_play_at)
