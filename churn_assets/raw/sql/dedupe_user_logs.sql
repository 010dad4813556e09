-- Duplicates of the window's listening rows. Only rows whose key (user, day) occurs more than
-- once can be duplicates; the keys are found by one aggregate over their 64-bit hashes (cheap at
-- hundreds of millions of rows), and a hash collision merely adds candidates that the exact
-- comparison below keeps apart. Exact copies are folded into one row and counted; rows sharing
-- a key but differing stay, counted as key duplicates.
CREATE OR REPLACE TEMP TABLE repeated_keys AS
SELECT hash(msno, date) AS key_hash
FROM user_logs
WHERE date >= $window_start AND date < $window_end
GROUP BY ALL
HAVING count(*) > 1;

-- The rows of repeated keys, exact copies folded (whichever files they came from) into one row
-- with their copy count and the file sorting last, the newest delivery, as for members.
CREATE OR REPLACE TEMP TABLE repeated_rows AS
SELECT * EXCLUDE (source_file), max(source_file) AS source_file, count(*) AS copies
FROM user_logs
WHERE date >= $window_start AND date < $window_end
  AND hash(msno, date) IN (SELECT key_hash FROM repeated_keys)
GROUP BY ALL;

DELETE FROM user_logs
WHERE date >= $window_start AND date < $window_end
  AND hash(msno, date) IN (SELECT key_hash FROM repeated_keys);

INSERT INTO user_logs SELECT * EXCLUDE (copies) FROM repeated_rows;

-- Per month: copies beyond the first of a row (dropped above), and distinct rows beyond the
-- first of a key (kept, flagged by the duplicates check).
CREATE OR REPLACE TEMP TABLE duplicate_counts AS
SELECT date_trunc('month', date)::DATE AS month,
       sum(copies - 1)::BIGINT AS exact_duplicates,
       (count(*) - count(DISTINCT (msno, date)))::BIGINT AS key_duplicates
FROM repeated_rows
GROUP BY ALL;
