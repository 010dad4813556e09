-- The churn labels of one cohort, replacing that cohort. Only labels that say one thing are
-- stored: a user listed with both 0 and 1, or a label outside {0, 1}, is left out (and counted
-- by quality_labels.sql; past the schema check's tolerance nothing of the cohort is stored).
DELETE FROM labels WHERE cohort_month = $window_start;
INSERT INTO labels
SELECT msno, $window_start::DATE AS cohort_month, any_value(is_churn) AS is_churn
FROM staged
WHERE msno IS NOT NULL AND msno <> '' AND is_churn IN (0, 1)
GROUP BY msno
HAVING count(DISTINCT is_churn) = 1;
