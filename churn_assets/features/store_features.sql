-- Replace the cohort's rows in `features` and record the feature set that produced them.
-- `features` holds the union of every feature set so far (new columns are added before this runs);
-- `feature_sets` says which of those columns each cohort was really built with, so a column the
-- SQL no longer produces reads as missing for newer cohorts instead of as a column of NULLs.
CREATE TABLE IF NOT EXISTS features AS SELECT * FROM cohort_features LIMIT 0;

CREATE TABLE IF NOT EXISTS feature_sets (
    cohort_month DATE NOT NULL,
    column_name VARCHAR NOT NULL,
    column_type VARCHAR NOT NULL
);

DELETE FROM features WHERE cohort_month = $cutoff;

INSERT INTO features BY NAME SELECT * FROM cohort_features;

DELETE FROM feature_sets WHERE cohort_month = $cutoff;

INSERT INTO feature_sets
SELECT $cutoff::DATE, column_name, column_type
FROM (DESCRIBE cohort_features)
WHERE column_name NOT IN ('msno', 'cohort_month');
