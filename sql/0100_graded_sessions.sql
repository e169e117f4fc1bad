-- Purpose: the graded sessions every summary starts from: accepted, de-duplicated, valid
-- attempts (hence scored) created at or before the end of the as-of day.
-- Grain: one row per graded session.
-- Phase: build
-- Order: kept (graded_history's order, which sessions.parquet is written in)
CREATE OR REPLACE TABLE graded_sessions AS
SELECT session_id, scenario_id, user_id, created_at, score, duration_seconds
FROM graded_history
WHERE created_at <= $as_of_end;
