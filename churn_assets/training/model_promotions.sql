-- Every change of champion, appended as history (what the registry's aliases cannot remember).
CREATE TABLE IF NOT EXISTS model_promotions (
    model_version VARCHAR NOT NULL,
    previous_version VARCHAR,
    action VARCHAR NOT NULL,
    reason VARCHAR,
    changed_at TIMESTAMP NOT NULL
);
INSERT INTO model_promotions BY NAME SELECT * FROM promotion_row;
