-- One published version of one cohort: written whole under a temporary name, then renamed.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One JSON record per user (online/store.py: encode_payload), looked up by msno.
CREATE TABLE users (
    msno TEXT PRIMARY KEY,
    payload TEXT NOT NULL
) WITHOUT ROWID;
