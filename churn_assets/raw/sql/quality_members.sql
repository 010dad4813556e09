-- Quality numbers of the members snapshot (KKBox quirks are counted, not rejected).
SELECT
    $window_start::DATE AS month,
    count(*) AS rows,
    count(*) FILTER (WHERE msno IS NULL OR msno = '') AS invalid_key_rows,
    count(*) FILTER (WHERE registration_init_time IS NULL) AS null_registration_init_time,
    count(*) FILTER (WHERE city IS NULL) AS null_city,
    count(*) FILTER (WHERE registered_via IS NULL) AS null_registered_via,
    count(*) FILTER (WHERE gender IS NULL) AS empty_gender,
    count(*) FILTER (WHERE bd IS NULL OR bd <= 0 OR bd > 100) AS range_invalid_bd,
    count(*) FILTER (WHERE gender NOT IN ('male', 'female')) AS range_unknown_gender,
    count(*) FILTER (WHERE registration_init_time > current_date) AS range_future_registration,
    0 AS unknown_user_rows
FROM members;
