-- Landing rows of the window [$window_start_int, $window_end_int), exact duplicates folded into
-- one row with their copy count: one scan of the files for the whole window. Dates are built from
-- the YYYYMMDD integers arithmetically (much cheaper than parsing text); an impossible date fails
-- the load.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT
    msno,
    make_date(date // 10000, date // 100 % 100, date % 100) AS date,
    num_25, num_50, num_75, num_985, num_100, num_unq, total_secs,
    date // 100 AS month_tag,
    count(*) AS copies
FROM landing_source
WHERE date >= $window_start_int AND date < $window_end_int
GROUP BY ALL;
