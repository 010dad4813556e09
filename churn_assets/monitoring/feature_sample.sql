-- About the rows $hash_cut keeps (a hash of msno) of the given cohorts, with the given columns:
-- the rows the champion scores for prediction drift and Evidently's sample for the HTML report.
SELECT COLUMNS(lambda c: list_contains($columns, c))
FROM features
WHERE cohort_month IN (SELECT unnest($cohorts::DATE[]))
  AND hash(msno) <= $hash_cut;
