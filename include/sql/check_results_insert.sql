-- One data quality result of one attempt (positional binds, for executemany). The results
-- table is a placeholder filled with its validated, quoted name.
INSERT INTO {{ results }}
    (run_id, try_number, check_name, table_name, passed, observed, expected, checked_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
