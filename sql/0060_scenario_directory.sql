-- Purpose: every scenario the exports know, with its slug and name, and when its first
-- accepted session was created. None of it depends on the as-of date (labels come from
-- all sessions, like emails), so a backfill computes it once and each day only picks its
-- scenarios (0090). Slug and name come from the scenarios export, else from the latest
-- accepted session that has them (latest created_at, then highest session id). Slugs and
-- names are trimmed of white space (the same set as emails); an empty one is absent.
-- Grain: one row per scenario: every scenario of the scenarios export, and every scenario
-- of an accepted, de-duplicated session of any date.
-- Phase: build
CREATE OR REPLACE TABLE scenario_directory AS
WITH export AS (
    SELECT scenario_id,
           nullif(trim(slug, E' \t\n\x0b\f\r'), '')
               AS slug,
           nullif(trim(name, E' \t\n\x0b\f\r'), '')
               AS name
    FROM scenarios_export
),
first_sessions AS (
    SELECT scenario_id, min(created_at) AS first_session_at
    FROM sessions
    GROUP BY scenario_id
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
    coalesce(e.scenario_id, f.scenario_id) AS scenario_id,
    coalesce(e.slug, sl.slug) AS slug,
    coalesce(e.name, sl.name) AS name,
    e.scenario_id IS NOT NULL AS in_scenarios_export,
    f.first_session_at
FROM export AS e
FULL OUTER JOIN first_sessions AS f ON f.scenario_id = e.scenario_id
LEFT JOIN session_labels AS sl ON sl.scenario_id = coalesce(e.scenario_id, f.scenario_id);
