-- Rows of one table of the run report (the table's validated, quoted name is formatted in).
SELECT COUNT(*) FROM {table}
