-- Duplicates of the window's transactions. A transaction's key is its user, day, expiry and
-- cancel flag; only rows whose key occurs more than once can be duplicates. The keys are found
-- by one aggregate over their 64-bit hashes, and a hash collision merely adds candidates that the
-- exact comparison below keeps apart. Exact copies (KKBox's v1/v2 overlap) are folded into one
-- row and counted; rows sharing a key but with different payment fields stay, counted as key
-- duplicates.
CREATE OR REPLACE TEMP TABLE repeated_keys AS
SELECT hash(msno, transaction_date, membership_expire_date, is_cancel) AS key_hash
FROM transactions
WHERE transaction_date >= $window_start AND transaction_date < $window_end
GROUP BY ALL
HAVING count(*) > 1;

-- The rows of repeated keys, exact copies folded (whichever files they came from) into one row
-- with their copy count and the file sorting last, the newest delivery, as for members.
CREATE OR REPLACE TEMP TABLE repeated_rows AS
SELECT * EXCLUDE (source_file), max(source_file) AS source_file, count(*) AS copies
FROM transactions
WHERE transaction_date >= $window_start AND transaction_date < $window_end
  AND hash(msno, transaction_date, membership_expire_date, is_cancel) IN (SELECT key_hash FROM repeated_keys)
GROUP BY ALL;

DELETE FROM transactions
WHERE transaction_date >= $window_start AND transaction_date < $window_end
  AND hash(msno, transaction_date, membership_expire_date, is_cancel) IN (SELECT key_hash FROM repeated_keys);

INSERT INTO transactions SELECT * EXCLUDE (copies) FROM repeated_rows;

-- Per month: copies beyond the first of a row (dropped above), and distinct rows beyond the
-- first of a key (kept, flagged by the duplicates check).
CREATE OR REPLACE TEMP TABLE duplicate_counts AS
SELECT date_trunc('month', transaction_date)::DATE AS month,
       sum(copies - 1)::BIGINT AS exact_duplicates,
       (count(*) - count(DISTINCT (msno, transaction_date, membership_expire_date, is_cancel)))::BIGINT AS key_duplicates
FROM repeated_rows
GROUP BY ALL;
