-- Every landing row of the cohort's label files, exact duplicates folded with their copy count.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT msno, is_churn, 0 AS month_tag, count(*) AS copies
FROM landing_source
GROUP BY ALL;
