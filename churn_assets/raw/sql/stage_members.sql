-- Every landing row of the members files with the day it became known (member_files: a dated
-- file from the month after its name's month, an undated one from the start), exact duplicates
-- (within or across files of the same date) folded into one row with their copy count; the
-- newest file holding the row is kept for the v1/v2 rule.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT
    s.msno, s.city, s.bd, s.gender, s.registered_via, s.registration_init_time, f.known_from,
    max(s.source_file) AS source_file,
    count(*) AS copies
FROM landing_source s
JOIN member_files f USING (source_file)
GROUP BY ALL;

-- Copies beyond the first of a row (folded above), and distinct rows beyond the first of a user
-- and snapshot date.
CREATE OR REPLACE TEMP TABLE duplicate_counts AS
SELECT $window_start::DATE AS month,
       coalesce(sum(copies - 1), 0)::BIGINT AS exact_duplicates,
       (count(*) - count(DISTINCT (msno, known_from)))::BIGINT AS key_duplicates
FROM staged;
