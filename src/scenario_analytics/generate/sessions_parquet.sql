-- Purpose: the rows of a Parquet sessions part file.
-- Typed columns with nested structs, as a warehouse export of the API objects would be.
SELECT
    CASE WHEN reason = 'missing_id' THEN [NULL, '', '   '][1 + v % 3] ELSE sid END AS id,
    CASE WHEN reason = 'missing_user_id' AND v % 3 = 1 THEN NULL
         ELSE struct_pack(
             id := CASE WHEN reason = 'missing_user_id' THEN (CASE WHEN v % 3 = 0 THEN NULL
                        ELSE '' END) ELSE user_id END,
             email := email, first_name := first_name, last_name := last_name)
    END AS "user",
    CASE WHEN reason = 'missing_scenario_id' AND v % 3 = 1 THEN NULL
         ELSE struct_pack(
             id := CASE WHEN reason = 'missing_scenario_id' THEN (CASE WHEN v % 3 = 0
                        THEN NULL ELSE '  ' END) ELSE scenario_id END,
             name := scenario_name, slug := scenario_slug)
    END AS scenario,
    CASE WHEN reason = 'bad_score' THEN [150.0, -1.0, 100.5][1 + v % 3]::DOUBLE
         WHEN reason = 'valid_attempt_without_score' THEN NULL
         ELSE score END AS score,
    rank_of(score) AS rank,
    CASE WHEN reason = 'bad_duration' THEN [-5.0, -0.5][1 + v % 2]::DOUBLE
         ELSE duration END AS duration_seconds,
    CASE WHEN reason = 'bad_is_valid_attempt' THEN NULL
         WHEN reason = 'valid_attempt_without_score' THEN true
         ELSE valid END AS is_valid_attempt,
    CASE WHEN reason = 'bad_created_at'
         THEN [created_day, 'not a date', NULL, '2026-13-02T10:00:00Z'][1 + v % 4]
         ELSE created_at END AS created_at,
    CASE WHEN extra THEN 'https://app.exec.com/sessions/' || sid END AS transcript_url
FROM session_rows()
ORDER BY grp, o1, o2;
