-- Purpose: the graded sessions every summary starts from: accepted, de-duplicated, valid
-- attempts (hence scored) created at or before the end of the as-of day.
-- Grain: one row per graded session.
-- Phase: build
-- A view of graded_history (0070), not a copy of its rows for every as-of date. A view
-- cannot hold a bound parameter, so the date is a session variable.
SET VARIABLE as_of_end = $as_of_end;
CREATE OR REPLACE VIEW graded_sessions AS
SELECT session_id, scenario_id, user_id, created_at, score, duration_seconds
FROM graded_history
WHERE created_at <= getvariable('as_of_end');
