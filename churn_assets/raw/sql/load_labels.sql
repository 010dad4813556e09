-- The churn labels of one cohort, replacing that cohort.
DELETE FROM labels WHERE cohort_month = $window_start;
INSERT INTO labels
SELECT msno, $window_start::DATE AS cohort_month, is_churn
FROM staged;
