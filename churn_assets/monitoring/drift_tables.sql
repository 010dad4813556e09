-- Per-column drift of one cohort, replacing that cohort's rows (DESIGN §5 drift_metrics).
-- method 'psi': one row per feature column; 'prediction_psi': the champion's score
-- (column_name 'churn_probability'); 'weighted_psi': the importance-weighted score of all
-- features (column_name '*'); 'psi_new_members': one row per feature column over the members
-- registered within the new-member window, on both sides. moves: the column's shift alone is
-- major and beyond noise over every column tested; stands_out: it moves and the champion relies
-- on it (gain share from an even share of the columns it uses): it makes data drift at least a
-- warning. A column that moves but is barely used is information only.
-- score is the raw PSI (the weighted one for 'weighted_psi'), adjusted_score what is judged: PSI
-- beyond sampling noise; drifted when tier is not 'pass'.
-- 'psi_segment': one row per customer segment judged (column_name 'city=13', segment_column,
-- segment_value, segment_share of the cohort's users): score its importance-weighted PSI,
-- adjusted_score that beyond each column's noise, noise_limit the Bonferroni limit over the
-- segments tested; stands_out: the segment warns (monitoring/segments.py).
CREATE TABLE IF NOT EXISTS drift_metrics (
    cohort_month DATE NOT NULL,
    column_name VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    score DOUBLE,
    threshold DOUBLE,
    drifted BOOLEAN NOT NULL,
    reference_model_version VARCHAR
);
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS tier VARCHAR;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS adjusted_score DOUBLE;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS expected_noise DOUBLE;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS noise_limit DOUBLE;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS major_threshold DOUBLE;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS js_distance DOUBLE;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS importance DOUBLE;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS weighted_contribution DOUBLE;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS bins BIGINT;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS reference_rows BIGINT;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS current_rows BIGINT;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS evaluated_at TIMESTAMP;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS stands_out BOOLEAN;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS moves BOOLEAN;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS segment_column VARCHAR;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS segment_value DOUBLE;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS segment_share DOUBLE;
DELETE FROM drift_metrics WHERE cohort_month = $cohort;
INSERT INTO drift_metrics BY NAME SELECT * FROM drift_rows;
