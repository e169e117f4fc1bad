-- Purpose: step 3 of the summary for every participant in every window: session count,
-- first score (earliest created_at, ties by smallest session id), best score, total and
-- count of durations.
-- Grain: one row per (window, scenario, user) with at least one graded session.
-- Phase: summarize
CREATE OR REPLACE TABLE participant_facts AS
WITH in_window AS (
    SELECT w.window_id, s.scenario_id, s.user_id, s.session_id, s.created_at, s.score,
           s.duration_seconds
    FROM graded_sessions AS s
    JOIN filter_windows AS w
      ON (w.start_date IS NULL OR s.created_at >= w.start_date)
     AND (w.end_date IS NULL OR s.created_at <= w.end_date)
)
SELECT
    window_id,
    scenario_id,
    user_id,
    count(*) AS session_count,
    -- The smallest (created_at, session_id, score) is the first session (ids are unique):
    -- a struct min is cheaper than arg_min with a struct key.
    min(struct_pack(created_at, session_id, score)).score
        AS first_score,
    max(score) AS best_score,
    coalesce(sum(duration_seconds), 0) AS total_duration_seconds,
    count(duration_seconds) AS sessions_with_duration
FROM in_window
GROUP BY window_id, scenario_id, user_id;
