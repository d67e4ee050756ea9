-- Rows of a whole table for the run report: a table every run rewrites (dimensions,
-- staging_songs), so with runs overlapping the count includes other runs' writes.
-- {{ table }}: the table's validated, quoted name (sparkify.sql.render_tables).
SELECT COUNT(*) FROM {{ table }}
