-- The rows one Redshift COPY skipped, on a provisioned cluster (STL_LOAD_ERRORS): file,
-- line, column, error code, reason and the start of the raw line. Binds: query_id (what
-- pg_last_copy_id() returned right after the COPY), limit. STL's text columns are CHAR,
-- padded with blanks: RTRIM keeps a raw line's leading blanks.
SELECT RTRIM(filename), line_number, RTRIM(colname), err_code, RTRIM(err_reason),
       RTRIM(raw_line)
FROM stl_load_errors
WHERE query = %(query_id)s
ORDER BY filename, line_number
LIMIT %(limit)s
