-- Purpose: the scenarios of the snapshot with their slug and name: every scenario of the
-- scenarios export, plus every scenario of an accepted, de-duplicated session created up
-- to the end of the as-of day. Slug and name come from the export, else from the latest
-- accepted session that has them (latest created_at, then highest session id). Slugs and
-- names are trimmed of white space (the same set as emails); an empty one is absent.
-- Grain: one row per scenario.
-- Phase: build
CREATE OR REPLACE TABLE snapshot_scenarios AS
WITH ids AS (
    SELECT scenario_id FROM scenarios_export
    UNION
    SELECT scenario_id FROM sessions WHERE created_at <= $as_of_end
),
export AS (
    SELECT scenario_id,
           nullif(trim(slug, E' \t\n\x0b\f\r'), '')
               AS slug,
           nullif(trim(name, E' \t\n\x0b\f\r'), '')
               AS name
    FROM scenarios_export
),
labelled_sessions AS (
    SELECT scenario_id, created_at, session_id,
           nullif(trim(scenario_slug,
                       E' \t\n\x0b\f\r'), '') AS slug,
           nullif(trim(scenario_name,
                       E' \t\n\x0b\f\r'), '') AS name
    FROM sessions
    -- Only scenarios the export does not fully label need their sessions looked at.
    WHERE scenario_id NOT IN (
        SELECT scenario_id FROM export WHERE slug IS NOT NULL AND name IS NOT NULL)
),
session_labels AS (
    SELECT scenario_id,
           arg_max(slug, (created_at, session_id)) FILTER (WHERE slug IS NOT NULL) AS slug,
           arg_max(name, (created_at, session_id)) FILTER (WHERE name IS NOT NULL) AS name
    FROM labelled_sessions
    GROUP BY scenario_id
)
SELECT
    i.scenario_id,
    coalesce(e.slug, sl.slug) AS slug,
    coalesce(e.name, sl.name) AS name,
    e.scenario_id IS NOT NULL AS in_scenarios_export
FROM ids AS i
LEFT JOIN export AS e ON e.scenario_id = i.scenario_id
LEFT JOIN session_labels AS sl ON sl.scenario_id = i.scenario_id;
