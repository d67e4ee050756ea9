-- A table's columns in order, for staging: name, type, nullable, maximum length of text.
-- Positional binds: the schema, then the table.
SELECT column_name, data_type, is_nullable = 'YES', character_maximum_length
FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s
ORDER BY ordinal_position
