-- The new-member slice of the compared cohorts (drift_new_members): the feature rows of members
-- registered at most $max_registration_days days before their cohort's cut-off. feature_bins.sql
-- reads it in place of features; a member whose registration is unknown is in no slice.
CREATE OR REPLACE TEMP TABLE drift_new_members AS
SELECT *
FROM features
WHERE cohort_month IN (SELECT unnest($cohorts::DATE[]))
  AND registration_age_days <= $max_registration_days;
