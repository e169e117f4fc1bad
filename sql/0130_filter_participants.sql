-- Purpose: which participants each filter keeps. user_ids and user_emails are unioned,
-- group_ids keeps members of any listed group, exclude_system_users drops system users;
-- filters naming no users or groups keep everyone in their window.
-- Grain: one row per (filter, scenario, user) kept.
-- Phase: summarize

-- The rank of a score: the one place its thresholds are written. 0140 ranks best scores
-- and average best scores with it, and participants.parquet first and best scores.
CREATE OR REPLACE MACRO score_rank(score) AS
    CASE WHEN score >= 90 THEN 'gold' WHEN score >= 75 THEN 'silver'
         WHEN score >= 50 THEN 'bronze' ELSE 'unranked' END;

CREATE OR REPLACE TABLE filter_participants AS
WITH listed AS (
    SELECT filter_id, user_id FROM (SELECT filter_id, unnest(user_ids) AS user_id FROM filters)
    UNION
    SELECT e.filter_id, u.user_id
    FROM (SELECT filter_id, unnest(user_emails) AS email FROM filters) AS e
    JOIN users AS u ON u.email = e.email
),
grouped AS (
    -- One group (the usual case): its members, already distinct pairs in group_memberships.
    SELECT f.filter_id, m.user_id
    FROM filters AS f
    JOIN group_memberships AS m ON m.group_id = f.group_ids[1]
    WHERE len(f.group_ids) = 1
    UNION ALL
    SELECT DISTINCT g.filter_id, m.user_id
    FROM (SELECT filter_id, unnest(group_ids) AS group_id FROM filters
          WHERE len(group_ids) > 1) AS g
    JOIN group_memberships AS m ON m.group_id = g.group_id
),
selected_users AS (
    -- Filters with a user list and groups keep users in both; otherwise the one they have.
    SELECT f.filter_id, l.user_id
    FROM filters AS f JOIN listed AS l ON l.filter_id = f.filter_id
    WHERE len(f.group_ids) = 0
    UNION ALL
    SELECT f.filter_id, g.user_id
    FROM filters AS f JOIN grouped AS g ON g.filter_id = f.filter_id
    WHERE len(f.user_ids) = 0 AND len(f.user_emails) = 0
    UNION ALL
    SELECT f.filter_id, l.user_id
    FROM filters AS f
    JOIN listed AS l ON l.filter_id = f.filter_id
    JOIN grouped AS g ON g.filter_id = f.filter_id AND g.user_id = l.user_id
),
filter_window AS (
    SELECT f.filter_id, f.exclude_system_users,
           len(f.user_ids) + len(f.user_emails) + len(f.group_ids) = 0 AS all_users,
           w.window_id
    FROM filters AS f
    JOIN filter_windows AS w
      ON w.start_date IS NOT DISTINCT FROM f.start_date
     AND w.end_date IS NOT DISTINCT FROM f.end_date
),
kept AS (
    SELECT fw.filter_id, fw.exclude_system_users, p.*
    FROM filter_window AS fw
    JOIN participant_facts AS p ON p.window_id = fw.window_id
    WHERE fw.all_users
    UNION ALL
    SELECT fw.filter_id, fw.exclude_system_users, p.*
    FROM filter_window AS fw
    JOIN selected_users AS su ON su.filter_id = fw.filter_id
    JOIN participant_facts AS p ON p.window_id = fw.window_id AND p.user_id = su.user_id
    WHERE NOT fw.all_users
)
SELECT k.filter_id, k.scenario_id, k.user_id, k.session_count, k.first_score, k.best_score,
       k.best_score - k.first_score AS lift, k.total_duration_seconds, k.sessions_with_duration
FROM kept AS k
LEFT JOIN users AS u ON u.user_id = k.user_id
WHERE NOT (k.exclude_system_users AND coalesce(u.is_system, false));
