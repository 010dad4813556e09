-- The scores of one cohort, replacing whatever that cohort had before.
CREATE TABLE IF NOT EXISTS predictions (
    msno VARCHAR NOT NULL,
    cohort_month DATE NOT NULL,
    churn_probability DOUBLE NOT NULL,
    bucket VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    top_reasons VARCHAR,
    scored_at TIMESTAMP NOT NULL,
    control_group BOOLEAN
);
-- Held out of every action, to measure what the actions were worth (outcomes/control.py).
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS control_group BOOLEAN;
-- How buckets were drawn: by probability cut-offs, or bucket A by the call centre's capacity.
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS bucket_policy VARCHAR;
DELETE FROM predictions WHERE cohort_month = $cohort;
INSERT INTO predictions BY NAME
SELECT msno, cohort_month, churn_probability, bucket, model_version, top_reasons, scored_at,
       control_group, bucket_policy
FROM scored;
