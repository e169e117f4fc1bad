-- Purpose: the response body of GET /scenarios/{id}/analytics/summary for every scenario
-- of the snapshot under every filter, with exact decimal arithmetic: means are rounded
-- half away from zero on the exact value (all figures are non-negative, so half-up on
-- integers in units of 1e-4 score points / 1e-6 seconds is exact), ranks come from the
-- rounded average, percentages from counts.
-- Grain: one row per (scenario, filter); scenarios with no participants get zeros.
-- Phase: summarize
CREATE OR REPLACE TABLE summaries AS
WITH totals AS (
    SELECT
        filter_id,
        scenario_id,
        CAST(count(*) AS HUGEINT) AS n,
        CAST(sum(session_count) AS HUGEINT) AS total_sessions,
        CAST(sum(best_score) * 10000 AS HUGEINT) AS best_e4,
        CAST(sum(lift) * 10000 AS HUGEINT) AS lift_e4,
        CAST(sum(total_duration_seconds) * 1000000 AS HUGEINT) AS duration_us,
        CAST(sum(sessions_with_duration) AS HUGEINT) AS sessions_with_duration,
        CAST(count(*) FILTER (WHERE score_rank(best_score) = 'gold') AS HUGEINT) AS gold,
        CAST(count(*) FILTER (WHERE score_rank(best_score) = 'silver') AS HUGEINT) AS silver,
        CAST(count(*) FILTER (WHERE score_rank(best_score) = 'bronze') AS HUGEINT) AS bronze,
        CAST(count(*) FILTER (WHERE score_rank(best_score) = 'unranked') AS HUGEINT)
            AS unranked
    FROM filter_participants
    GROUP BY filter_id, scenario_id
),
rounded AS (
    SELECT
        filter_id,
        scenario_id,
        n,
        total_sessions,
        (2 * best_e4 + n * 1000) // (2 * n * 1000) AS best_tenths,
        (2 * lift_e4 + n * 1000) // (2 * n * 1000) AS lift_tenths,
        (2 * duration_us + 60000000) // 120000000 AS minutes,
        CASE WHEN sessions_with_duration > 0 THEN
            (20 * duration_us + sessions_with_duration * 1000000)
            // (2 * sessions_with_duration * 1000000)
        ELSE 0 END AS duration_tenths,
        gold, silver, bronze, unranked,
        (2000 * gold + n) // (2 * n) AS gold_tenths,
        (2000 * silver + n) // (2 * n) AS silver_tenths,
        (2000 * bronze + n) // (2 * n) AS bronze_tenths,
        (2000 * unranked + n) // (2 * n) AS unranked_tenths
    FROM totals
),
figures AS (
    SELECT
        s.scenario_id,
        f.filter_id,
        f.request_key,
        f.user_ids,
        f.user_emails,
        f.group_ids,
        f.start_date,
        f.end_date,
        f.exclude_system_users,
        CAST(coalesce(r.n, 0) AS BIGINT) AS participant_count,
        CAST(coalesce(r.total_sessions, 0) AS BIGINT) AS total_sessions,
        CAST(CAST(coalesce(r.best_tenths, 0) AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(4, 1))
            AS average_best_score,
        -- The rank of the rounded average, as an exact decimal.
        score_rank(CAST(coalesce(r.best_tenths, 0) AS DECIMAL(18, 0)) * 0.1)
            AS average_best_rank,
        CAST(CAST(coalesce(r.lift_tenths, 0) AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(4, 1))
            AS average_lift_percentage,
        CAST(coalesce(r.minutes, 0) AS BIGINT) AS total_practice_minutes,
        CAST(CAST(coalesce(r.duration_tenths, 0) AS DECIMAL(30, 0)) * 0.1 AS DECIMAL(30, 1))
            AS average_session_duration_seconds,
        CAST(coalesce(r.gold, 0) AS BIGINT) AS gold_count,
        CAST(CAST(coalesce(r.gold_tenths, 0) AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(4, 1))
            AS gold_percentage,
        CAST(coalesce(r.silver, 0) AS BIGINT) AS silver_count,
        CAST(CAST(coalesce(r.silver_tenths, 0) AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(4, 1))
            AS silver_percentage,
        CAST(coalesce(r.bronze, 0) AS BIGINT) AS bronze_count,
        CAST(CAST(coalesce(r.bronze_tenths, 0) AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(4, 1))
            AS bronze_percentage,
        CAST(coalesce(r.unranked, 0) AS BIGINT) AS unranked_count,
        CAST(CAST(coalesce(r.unranked_tenths, 0) AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(4, 1))
            AS unranked_percentage
    FROM snapshot_scenarios AS s
    CROSS JOIN filters AS f
    LEFT JOIN rounded AS r ON r.scenario_id = s.scenario_id AND r.filter_id = f.filter_id
)
SELECT
    *,
    CAST(json_object(
        'participant_count', participant_count,
        'total_sessions', total_sessions,
        'average_best_score', average_best_score,
        'average_best_rank', average_best_rank,
        'average_lift_percentage', average_lift_percentage,
        'total_practice_minutes', total_practice_minutes,
        'average_session_duration_seconds', average_session_duration_seconds,
        'score_distribution', json_array(
            json_object('rank', 'gold', 'count', gold_count, 'percentage', gold_percentage),
            json_object('rank', 'silver', 'count', silver_count, 'percentage', silver_percentage),
            json_object('rank', 'bronze', 'count', bronze_count, 'percentage', bronze_percentage),
            json_object('rank', 'unranked', 'count', unranked_count,
                        'percentage', unranked_percentage)
        )
    ) AS VARCHAR) AS body
FROM figures;
