-- Purpose: the lines of a JSONL sessions part file.
-- Session rows as the API returns them, one JSON object per line.
SELECT line FROM (
    SELECT grp, o1, o2,
        CASE WHEN reason = 'missing_id' THEN ['null', '""', 'null', '"   "'][1 + v % 4]::JSON
             ELSE to_json(sid) END AS j_id,
        json_object(
            'id', CASE WHEN reason = 'missing_user_id' THEN (CASE WHEN v % 3 = 0 THEN NULL
                       ELSE '' END) ELSE user_id END,
            'email', email, 'first_name', first_name, 'last_name', last_name) AS j_user,
        CASE WHEN reason = 'missing_scenario_id' AND v % 3 = 1 THEN 'null'::JSON
             ELSE json_object(
                 'id', CASE WHEN reason = 'missing_scenario_id' THEN (CASE WHEN v % 3 = 0
                           THEN NULL ELSE '  ' END) ELSE scenario_id END,
                 'name', scenario_name, 'slug', scenario_slug) END AS j_scenario,
        CASE WHEN reason = 'bad_score' THEN ['101', '-1', '"82.5"', '100.5'][1 + v % 4]::JSON
             WHEN reason = 'valid_attempt_without_score' THEN NULL
             ELSE num_json(score) END AS j_score,
        CASE WHEN reason = 'bad_duration' THEN ['-5', '"347"', '-0.5'][1 + v % 3]::JSON
             ELSE num_json(duration) END AS j_duration,
        CASE WHEN reason = 'bad_is_valid_attempt'
                 THEN ['"yes"', 'true', '"true"', 'null'][1 + v % 4]::JSON
             WHEN reason = 'valid_attempt_without_score' THEN 'true'::JSON
             ELSE to_json(valid) END AS j_valid,
        CASE WHEN reason = 'bad_created_at' THEN to_json(
                 [created_day, 'not a date', '', '2026-13-02T10:00:00Z'][1 + v % 4])
             ELSE to_json(created_at) END AS j_created,
        json_object('id', j_id, 'user', j_user, 'scenario', j_scenario, 'score', j_score,
                    'rank', rank_of(score), 'duration_seconds', j_duration,
                    'is_valid_attempt', j_valid, 'created_at', j_created) AS obj,
        -- "absent" variants: a merge patch with null removes the key
        CASE WHEN reason = 'missing_id' AND v % 4 = 0 THEN 'id'
             WHEN reason = 'missing_user_id' AND v % 3 = 1 THEN 'user'
             WHEN reason = 'bad_created_at' AND v % 4 = 2 THEN 'created_at'
             WHEN reason = 'bad_is_valid_attempt' AND v % 4 = 1 THEN 'is_valid_attempt'
             WHEN reason = 'valid_attempt_without_score' AND v % 2 = 1 THEN 'score'
        END AS drop_key,
        CASE
            WHEN reason = 'malformed_record' THEN (CASE v % 3
                WHEN 0 THEN '{"id": "' || sid || '", "user": {"id": "' || user_id
                            || '", "email": '
                WHEN 1 THEN '["' || sid || '", "' || user_id || '", '
                            || CASE WHEN score IS NULL THEN 'null' ELSE num_text(score) END
                            || ']'
                ELSE '"session ' || sid || '"' END)
            WHEN drop_key IS NOT NULL
                THEN json_merge_patch(obj, json_object(drop_key, NULL))::VARCHAR
            WHEN extra THEN json_merge_patch(obj, json_object(
                'transcript_url', 'https://app.exec.com/sessions/' || sid))::VARCHAR
            ELSE obj::VARCHAR
        END AS line
    FROM session_rows()
)
ORDER BY grp, o1, o2;
