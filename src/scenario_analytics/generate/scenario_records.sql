-- Purpose: the rows of the scenarios export.
SELECT scenario_id AS id, scenario_name AS name, scenario_slug AS slug, description,
       difficulty, 'workspace' AS visibility, created_at, updated_at
FROM scenarios WHERE in_export ORDER BY scn;
