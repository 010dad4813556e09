-- Members are kept as dated snapshots: one row per user and day known, each with the landing
-- file it came from. A load replaces the rows of the files it reads, and only those: the rows of
-- a file that has left the landing folder (archived after delivery) stay until a file replaces
-- them. Rows loaded before files were recorded (no source_file) are rebuilt from the files read.
DELETE FROM members
WHERE source_file IS NULL
   OR source_file IN (SELECT DISTINCT regexp_extract(source_file, '[^/]+$') FROM staged);
INSERT INTO members
SELECT msno, city, bd, NULLIF(trim(gender), '') AS gender, registered_via,
       try_strptime(CAST(registration_init_time AS VARCHAR), '%Y%m%d')::DATE,
       known_from, regexp_extract(source_file, '[^/]+$') AS source_file
FROM staged
WHERE msno IS NOT NULL;
-- Within one date, when v1 and v2 files disagree on a user, the file sorting last (the newer
-- one) wins, whether it was loaded now or before. Features read, per user, the newest row known
-- before the cohort's first day.
DELETE FROM members AS m
WHERE EXISTS (
    SELECT 1 FROM members AS newer
    WHERE newer.msno = m.msno
      AND newer.known_from IS NOT DISTINCT FROM m.known_from
      AND newer.source_file > m.source_file
);
-- One file listing a user twice on one date: one row, the last one read.
DELETE FROM members
WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, row_number() OVER (
            PARTITION BY msno, known_from, source_file ORDER BY rowid DESC
        ) AS copy
        FROM members
    ) WHERE copy > 1
);
