-- Purpose: the scenarios of the snapshot with their slug and name (as the scenario
-- directory, 0060, resolved them): every scenario of the scenarios export, plus every
-- scenario of an accepted, de-duplicated session created up to the end of the as-of day.
-- Grain: one row per scenario.
-- Phase: build
CREATE OR REPLACE TABLE snapshot_scenarios AS
SELECT scenario_id, slug, name, in_scenarios_export
FROM scenario_directory
WHERE in_scenarios_export OR first_session_at <= $as_of_end;
