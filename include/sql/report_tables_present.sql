-- The tables of a schema (information_schema: PostgreSQL and Redshift alike).
SELECT table_name FROM information_schema.tables WHERE table_schema = %(schema)s
