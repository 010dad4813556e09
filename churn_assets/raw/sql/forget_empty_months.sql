-- A retracted month left without a row is no longer loaded: it leaves the ledgers, so the
-- coverage of every cohort reading it says it is missing.
DELETE FROM raw_loads
WHERE table_name = $table_name AND month >= $window_start AND month < $window_end AND rows = 0;
DELETE FROM raw_files
WHERE table_name = $table_name AND month >= $window_start AND month < $window_end AND rows = 0;
