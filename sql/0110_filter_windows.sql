-- Purpose: the distinct date windows of the requested filters. Per-participant figures
-- depend only on the window (every other filter selects whole users), so they are
-- computed once per window, not once per filter.
-- Grain: one row per distinct (start_date, end_date) among the filters.
-- Phase: summarize
CREATE OR REPLACE TABLE filter_windows AS
SELECT
    row_number() OVER (ORDER BY start_date NULLS FIRST, end_date NULLS FIRST) AS window_id,
    start_date,
    end_date
FROM (SELECT DISTINCT start_date, end_date FROM filters);
