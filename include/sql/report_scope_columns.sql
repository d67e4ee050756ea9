-- Which of the given tables have which columns, for the run report's counts: a table
-- created before a scope's column existed (staging_events without run_id) holds none of
-- the scope's rows. Binds: the schema, and the tables as a tuple (IN %(tables)s).
SELECT table_name, column_name
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name IN %(tables)s
