-- Hand-written baseline: the default materialized summaries in one statement.
--
-- For every scenario: {all users, each group} x {with, without system users} x
-- {all time, last 7, 30, 90 days}, with the figures of CONTRACT.md section 2 (exact
-- decimal rounding, half away from zero). No validation, no rejects, no publishing: the
-- exports are taken as clean. It still does the work the figures depend on: duplicates
-- (last file by path, then last row, wins), emails (member record, else the latest
-- session's), system users, group memberships as a set, scenarios without sessions.
--
-- Inputs, views made by duckdb_handwritten.py (for Parquet they read the files directly:
-- one statement from the raw exports, no staging tables; the scan for repeated ids is
-- cheaper than a window or an arg_max over every row, measured on the 1m dataset):
--   session_rows(id, user_id, email, scenario_id, score, duration_seconds,
--                is_valid_attempt, created_at, file, pos)     created_at as text
--   member_rows(id, email), scenario_rows(id), group_rows(id),
--   membership_rows(group_id, user_id)
-- Parameters: $as_of_end, $start_7, $start_30, $start_90 (naive UTC timestamps).
-- Output: table `result`, one row per (scenario, group_id (NULL = all users),
-- exclude_system_users, window_days (0 = all time)).
CREATE TABLE result AS
WITH
-- Ids written more than once are few: only those are ranked (last file, last row wins).
repeated AS (
    SELECT id FROM session_rows GROUP BY id HAVING count(*) > 1
),
sessions AS (
    SELECT id, user_id, email, scenario_id, score, duration_seconds, is_valid_attempt,
           created_at
    FROM session_rows
    WHERE id NOT IN (SELECT id FROM repeated)
    UNION ALL
    SELECT id, user_id, email, scenario_id, score, duration_seconds, is_valid_attempt,
           created_at
    FROM session_rows
    WHERE id IN (SELECT id FROM repeated)
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY file DESC, pos DESC) = 1
),
typed AS (
    SELECT id, user_id, email, scenario_id, is_valid_attempt,
           CAST(CAST(created_at AS TIMESTAMPTZ) AS TIMESTAMP) AS created_at,
           CAST(score AS DECIMAL(9, 4)) AS score,
           CAST(duration_seconds AS DECIMAL(38, 6)) AS duration
    FROM sessions
),
graded AS (
    SELECT * FROM typed WHERE is_valid_attempt AND created_at <= $as_of_end
),
-- A user's email: the member record's, else the latest session's that has one.
member_email AS (
    SELECT id AS user_id, lower(trim(email, E' \t\n\x0b\x0c\r')) AS email
    FROM member_rows
    WHERE trim(email, E' \t\n\x0b\x0c\r') <> ''
    -- member ids are unique in generated exports; keep one row per id all the same
    QUALIFY row_number() OVER (PARTITION BY id) = 1
),
session_email AS (
    SELECT user_id, lower(trim(arg_max(email, (created_at, id)), E' \t\n\x0b\x0c\r')) AS email
    FROM typed
    WHERE trim(email, E' \t\n\x0b\x0c\r') <> ''
    GROUP BY user_id
),
system_users AS (
    SELECT coalesce(m.user_id, s.user_id) AS user_id
    FROM member_email AS m
    FULL JOIN session_email AS s ON s.user_id = m.user_id
    WHERE coalesce(m.email, s.email) LIKE '%@exec.com'
),
memberships AS (
    SELECT DISTINCT group_id, user_id FROM membership_rows
),
-- Per (scenario, user): the four windows in one aggregation (they are nested).
facts AS (
    SELECT
        scenario_id,
        user_id,
        count(*) AS n_0,
        max(score) AS best_0,
        arg_min(score, (created_at, id)) AS first_0,
        sum(duration) AS dur_0,
        count(duration) AS nd_0,
        count(*) FILTER (WHERE created_at >= $start_90) AS n_90,
        max(score) FILTER (WHERE created_at >= $start_90) AS best_90,
        arg_min(score, (created_at, id)) FILTER (WHERE created_at >= $start_90) AS first_90,
        sum(duration) FILTER (WHERE created_at >= $start_90) AS dur_90,
        count(duration) FILTER (WHERE created_at >= $start_90) AS nd_90,
        count(*) FILTER (WHERE created_at >= $start_30) AS n_30,
        max(score) FILTER (WHERE created_at >= $start_30) AS best_30,
        arg_min(score, (created_at, id)) FILTER (WHERE created_at >= $start_30) AS first_30,
        sum(duration) FILTER (WHERE created_at >= $start_30) AS dur_30,
        count(duration) FILTER (WHERE created_at >= $start_30) AS nd_30,
        count(*) FILTER (WHERE created_at >= $start_7) AS n_7,
        max(score) FILTER (WHERE created_at >= $start_7) AS best_7,
        arg_min(score, (created_at, id)) FILTER (WHERE created_at >= $start_7) AS first_7,
        sum(duration) FILTER (WHERE created_at >= $start_7) AS dur_7,
        count(duration) FILTER (WHERE created_at >= $start_7) AS nd_7
    FROM graded
    GROUP BY scenario_id, user_id
),
participants AS (
    SELECT scenario_id, user_id, 0 AS window_days, n_0 AS n, best_0 AS best,
           best_0 - first_0 AS lift, dur_0 AS dur, nd_0 AS nd
    FROM facts
    UNION ALL
    SELECT scenario_id, user_id, 90, n_90, best_90, best_90 - first_90, dur_90, nd_90
    FROM facts WHERE n_90 > 0
    UNION ALL
    SELECT scenario_id, user_id, 30, n_30, best_30, best_30 - first_30, dur_30, nd_30
    FROM facts WHERE n_30 > 0
    UNION ALL
    SELECT scenario_id, user_id, 7, n_7, best_7, best_7 - first_7, dur_7, nd_7
    FROM facts WHERE n_7 > 0
),
audiences AS (
    SELECT p.*, NULL::VARCHAR AS group_id FROM participants AS p
    UNION ALL
    SELECT p.*, m.group_id FROM participants AS p JOIN memberships AS m USING (user_id)
),
-- Sums and counts add up: aggregate once by system flag, then combine.
by_system AS (
    SELECT
        a.scenario_id, a.group_id, a.window_days,
        su.user_id IS NOT NULL AS is_system,
        count(*) AS n,
        sum(a.n) AS sessions,
        sum(a.best) AS best,
        sum(a.lift) AS lift,
        sum(a.dur) AS dur,
        sum(a.nd) AS nd,
        count(*) FILTER (WHERE a.best >= 90) AS gold,
        count(*) FILTER (WHERE a.best >= 75 AND a.best < 90) AS silver,
        count(*) FILTER (WHERE a.best >= 50 AND a.best < 75) AS bronze,
        count(*) FILTER (WHERE a.best < 50) AS unranked
    FROM audiences AS a
    LEFT JOIN system_users AS su ON su.user_id = a.user_id
    GROUP BY ALL
),
totals AS (
    SELECT scenario_id, group_id, window_days, exclude_system_users,
           sum(n) AS n, sum(sessions) AS sessions, sum(best) AS best, sum(lift) AS lift,
           sum(dur) AS dur, sum(nd) AS nd, sum(gold) AS gold, sum(silver) AS silver,
           sum(bronze) AS bronze, sum(unranked) AS unranked
    FROM (
        SELECT *, false AS exclude_system_users FROM by_system
        UNION ALL
        SELECT *, true FROM by_system WHERE NOT is_system
    )
    GROUP BY ALL
),
-- Every (scenario, audience, system users, window), with zeros where nobody practised.
scenarios AS (
    SELECT id AS scenario_id FROM scenario_rows
    UNION
    SELECT scenario_id FROM typed WHERE created_at <= $as_of_end
),
grid AS (
    SELECT s.scenario_id, g.group_id, x.exclude_system_users, w.window_days
    FROM scenarios AS s
    CROSS JOIN (SELECT NULL::VARCHAR AS group_id
                UNION SELECT id FROM group_rows
                UNION SELECT group_id FROM memberships) AS g
    CROSS JOIN (VALUES (false), (true)) AS x(exclude_system_users)
    CROSS JOIN (VALUES (0), (7), (30), (90)) AS w(window_days)
),
-- Exact rounding, half away from zero (every figure is >= 0): integers in units of
-- 1e-4 score points and 1e-6 seconds.
exact AS (
    SELECT g.*,
           CAST(coalesce(t.n, 0) AS HUGEINT) AS n,
           CAST(coalesce(t.sessions, 0) AS BIGINT) AS sessions,
           CAST(coalesce(t.best, 0) * 10000 AS HUGEINT) AS best_e4,
           CAST(coalesce(t.lift, 0) * 10000 AS HUGEINT) AS lift_e4,
           CAST(coalesce(t.dur, 0) * 1000000 AS HUGEINT) AS dur_us,
           CAST(coalesce(t.nd, 0) AS HUGEINT) AS nd,
           CAST(coalesce(t.gold, 0) AS HUGEINT) AS gold,
           CAST(coalesce(t.silver, 0) AS HUGEINT) AS silver,
           CAST(coalesce(t.bronze, 0) AS HUGEINT) AS bronze,
           CAST(coalesce(t.unranked, 0) AS HUGEINT) AS unranked
    FROM grid AS g
    LEFT JOIN totals AS t
      ON t.scenario_id = g.scenario_id
     AND t.group_id IS NOT DISTINCT FROM g.group_id
     AND t.exclude_system_users = g.exclude_system_users
     AND t.window_days = g.window_days
),
tenths AS (
    SELECT *,
           CASE WHEN n = 0 THEN 0 ELSE (2 * best_e4 + n * 1000) // (2 * n * 1000) END AS best_t,
           CASE WHEN n = 0 THEN 0 ELSE (2 * lift_e4 + n * 1000) // (2 * n * 1000) END AS lift_t,
           CASE WHEN nd = 0 THEN 0 ELSE (20 * dur_us + nd * 1000000) // (2 * nd * 1000000) END
               AS duration_t,
           CASE WHEN n = 0 THEN 0 ELSE (2000 * gold + n) // (2 * n) END AS gold_t,
           CASE WHEN n = 0 THEN 0 ELSE (2000 * silver + n) // (2 * n) END AS silver_t,
           CASE WHEN n = 0 THEN 0 ELSE (2000 * bronze + n) // (2 * n) END AS bronze_t,
           CASE WHEN n = 0 THEN 0 ELSE (2000 * unranked + n) // (2 * n) END AS unranked_t
    FROM exact
)
SELECT
    scenario_id,
    group_id,
    exclude_system_users,
    window_days,
    CAST(n AS BIGINT) AS participant_count,
    sessions AS total_sessions,
    CAST(CAST(best_t AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(18, 1)) AS average_best_score,
    CASE WHEN best_t >= 900 THEN 'gold' WHEN best_t >= 750 THEN 'silver'
         WHEN best_t >= 500 THEN 'bronze' ELSE 'unranked' END AS average_best_rank,
    CAST(CAST(lift_t AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(18, 1)) AS average_lift_percentage,
    CAST((2 * dur_us + 60000000) // 120000000 AS BIGINT) AS total_practice_minutes,
    CAST(CAST(duration_t AS DECIMAL(30, 0)) * 0.1 AS DECIMAL(30, 1))
        AS average_session_duration_seconds,
    CAST(gold AS BIGINT) AS gold_count,
    CAST(CAST(gold_t AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(18, 1)) AS gold_percentage,
    CAST(silver AS BIGINT) AS silver_count,
    CAST(CAST(silver_t AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(18, 1)) AS silver_percentage,
    CAST(bronze AS BIGINT) AS bronze_count,
    CAST(CAST(bronze_t AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(18, 1)) AS bronze_percentage,
    CAST(unranked AS BIGINT) AS unranked_count,
    CAST(CAST(unranked_t AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(18, 1)) AS unranked_percentage
FROM tenths;
