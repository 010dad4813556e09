-- The churn labels of one cohort, replacing that cohort.
DELETE FROM labels WHERE cohort_month = $month_start;
INSERT INTO labels
SELECT DISTINCT msno, $month_start::DATE AS cohort_month, is_churn
FROM landing_source;
