-- Purpose: the scenarios of the snapshot with their slug and name: every scenario of the
-- scenarios export, plus every scenario of an accepted, de-duplicated session created up
-- to the end of the as-of day. Slug and name come from the export, else from the latest
-- accepted session that has them (latest created_at, then highest session id).
-- Grain: one row per scenario.
-- Phase: build
CREATE OR REPLACE TABLE snapshot_scenarios AS
WITH ids AS (
    SELECT scenario_id FROM scenarios_export
    UNION
    SELECT scenario_id FROM sessions WHERE created_at <= $as_of_end
),
session_slug AS (
    SELECT scenario_id, scenario_slug AS slug
    FROM (
        SELECT scenario_id, scenario_slug,
               row_number() OVER (PARTITION BY scenario_id
                                  ORDER BY created_at DESC, session_id DESC) AS rn
        FROM sessions
        WHERE trim(scenario_slug) <> ''
    )
    WHERE rn = 1
),
session_name AS (
    SELECT scenario_id, scenario_name AS name
    FROM (
        SELECT scenario_id, scenario_name,
               row_number() OVER (PARTITION BY scenario_id
                                  ORDER BY created_at DESC, session_id DESC) AS rn
        FROM sessions
        WHERE trim(scenario_name) <> ''
    )
    WHERE rn = 1
)
SELECT
    i.scenario_id,
    coalesce(nullif(trim(e.slug), ''), ss.slug) AS slug,
    coalesce(nullif(trim(e.name), ''), sn.name) AS name,
    e.scenario_id IS NOT NULL AS in_scenarios_export
FROM ids AS i
LEFT JOIN scenarios_export AS e ON e.scenario_id = i.scenario_id
LEFT JOIN session_slug AS ss ON ss.scenario_id = i.scenario_id
LEFT JOIN session_name AS sn ON sn.scenario_id = i.scenario_id;
