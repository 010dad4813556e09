-- Every landing row of the cohort's label files, exact duplicates folded with their copy count.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT msno, is_churn, count(*) AS copies
FROM landing_source
GROUP BY ALL;

-- Copies beyond the first of a row (folded above), and distinct rows beyond the first of a user.
CREATE OR REPLACE TEMP TABLE duplicate_counts AS
SELECT $window_start::DATE AS month,
       coalesce(sum(copies - 1), 0)::BIGINT AS exact_duplicates,
       (count(*) - count(DISTINCT msno))::BIGINT AS key_duplicates
FROM staged;
