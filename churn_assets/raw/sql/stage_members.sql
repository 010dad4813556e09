-- Every landing row of the members files, exact duplicates (within or across files) folded into
-- one row with their copy count; the newest file holding the row is kept for the v1/v2 rule.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT
    msno, city, bd, gender, registered_via, registration_init_time,
    max(source_file) AS source_file,
    0 AS month_tag,
    count(*) AS copies
FROM landing_source
GROUP BY msno, city, bd, gender, registered_via, registration_init_time;
