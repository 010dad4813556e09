-- Every landing row of the members files, exact duplicates (within or across files) folded into
-- one row with their copy count; the newest file holding the row is kept for the v1/v2 rule.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT
    msno, city, bd, gender, registered_via, registration_init_time,
    max(source_file) AS source_file,
    count(*) AS copies
FROM landing_source
GROUP BY msno, city, bd, gender, registered_via, registration_init_time;

-- Copies beyond the first of a row (folded above), and distinct rows beyond the first of a user.
CREATE OR REPLACE TEMP TABLE duplicate_counts AS
SELECT $window_start::DATE AS month,
       coalesce(sum(copies - 1), 0)::BIGINT AS exact_duplicates,
       (count(*) - count(DISTINCT msno))::BIGINT AS key_duplicates
FROM staged;
