-- Members are kept as dated snapshots: one row per user and day known. Within one date, when v1
-- and v2 files disagree on a user, the file sorting last (the newer one) wins. Features read,
-- per user, the newest row known before the cohort's first day.
DELETE FROM members;
INSERT INTO members
SELECT msno, city, bd, NULLIF(trim(gender), '') AS gender, registered_via,
       try_strptime(CAST(registration_init_time AS VARCHAR), '%Y%m%d')::DATE,
       known_from
FROM staged
WHERE msno IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY msno, known_from ORDER BY source_file DESC) = 1;
