-- Members are a snapshot, replaced whole. When v1 and v2 files disagree on a user, the file
-- sorting last (the newer one) wins.
DELETE FROM members;
INSERT INTO members
SELECT msno, city, bd, NULLIF(trim(gender), '') AS gender, registered_via,
       try_strptime(CAST(registration_init_time AS VARCHAR), '%Y%m%d')::DATE
FROM staged
WHERE msno IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY msno ORDER BY source_file DESC) = 1;
