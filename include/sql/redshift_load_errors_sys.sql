-- The rows one Redshift COPY skipped, on Serverless (SYS_LOAD_ERROR_DETAIL; there are no
-- STL views there): file, line, column, error code and reason; this view keeps no raw
-- line. Binds: query_id (what pg_last_copy_id() returned right after the COPY), limit.
SELECT RTRIM(file_name), line_number, RTRIM(column_name), error_code, RTRIM(error_message),
       CAST(NULL AS VARCHAR(1024))
FROM sys_load_error_detail
WHERE query_id = %(query_id)s
ORDER BY file_name, line_number
LIMIT %(limit)s
