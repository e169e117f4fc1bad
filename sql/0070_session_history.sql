-- Purpose: the sessions of every date, as each as-of date needs them: the graded ones
-- (accepted, de-duplicated, valid attempts, hence scored) in the order the snapshot's
-- sessions.parquet lists them (by scenario, user, created_at, then session id), and the
-- number of accepted, de-duplicated sessions per day (and the newest one's time) for
-- the manifest's counts and the completeness checks. Sorting
-- 10M rows is most of the cost of writing sessions.parquet; done once here, each as-of
-- date (0100) only filters, keeping this order. With these, no as-of file needs the
-- `sessions` table itself.
-- Grain: graded_history: one row per graded session, of any date; sessions_per_day: one
-- row per UTC day with at least one session.
-- Phase: build
-- Order: kept (graded_history holds its rows in this order; 0100 and the snapshot keep it)
CREATE OR REPLACE TABLE graded_history AS
SELECT session_id, scenario_id, user_id, created_at, score, duration_seconds
FROM sessions
WHERE is_valid_attempt
ORDER BY scenario_id, user_id, created_at, session_id;

CREATE OR REPLACE TABLE sessions_per_day AS
SELECT CAST(created_at AS DATE) AS day, count(*) AS sessions, max(created_at) AS newest
FROM sessions
GROUP BY day;
