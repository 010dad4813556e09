-- The window's months in raw_files: every file read for a month (read_files: month, source_file,
-- signature), with the rows it kept there, and every file whose rows stay although it has left
-- the landing folder, with the signature recorded when it was read. Replaced in the load's own
-- transaction, as raw_loads is.
CREATE OR REPLACE TEMP TABLE window_files AS
SELECT
    coalesce(r.month, s.month) AS month,
    coalesce(r.source_file, s.source_file) AS source_file,
    coalesce(r.signature, before.signature) AS signature,
    coalesce(s.rows, 0) AS rows
FROM read_files AS r
FULL JOIN stored_files AS s ON s.month = r.month AND s.source_file = r.source_file
LEFT JOIN raw_files AS before
    ON before.table_name = $table_name
   AND before.month = s.month
   AND before.source_file = s.source_file;

DELETE FROM raw_files
WHERE table_name = $table_name AND month >= $window_start AND month < $window_end;

INSERT INTO raw_files
SELECT $table_name, month, coalesce(source_file, '(unrecorded)'), signature, rows,
       now()::TIMESTAMP
FROM window_files;
