-- Purpose: the lines of a CSV sessions part file, header first.
-- Flat CSV lines, written verbatim so that a malformed row (wrong column count) can exist.
SELECT line FROM (
    SELECT grp, o1, o2,
        concat_ws(',',
            CASE WHEN reason = 'missing_id' THEN ['', '   '][1 + v % 2] ELSE sid END,
            CASE WHEN reason = 'missing_user_id' THEN ['', ' '][1 + v % 2] ELSE user_id END,
            csv_text(email), csv_text(first_name), csv_text(last_name),
            CASE WHEN reason = 'missing_scenario_id' THEN ['', '  '][1 + v % 2]
                 ELSE scenario_id END,
            csv_text(scenario_slug), csv_text(scenario_name),
            CASE WHEN reason = 'bad_score' THEN ['101', '-1', 'n/a', '100.5'][1 + v % 4]
                 WHEN reason = 'valid_attempt_without_score' THEN ''
                 WHEN txs < 0.01 AND score IS NOT NULL THEN ' ' || num_text(score) || ' '
                 ELSE num_text(score) END,
            coalesce(rank_of(score), ''),
            CASE WHEN reason = 'bad_duration' THEN ['-5', 'abc', '-0.5'][1 + v % 3]
                 ELSE num_text(duration) END,
            CASE WHEN reason = 'bad_is_valid_attempt' THEN ['yes', '', 'maybe'][1 + v % 3]
                 WHEN reason = 'valid_attempt_without_score' THEN ['true', '1', 'TRUE'][
                     1 + v % 3]
                 WHEN txs < 0.85 THEN valid::VARCHAR
                 WHEN txs < 0.93 THEN upper(valid::VARCHAR)
                 WHEN txs < 0.97 THEN valid::INTEGER::VARCHAR
                 ELSE CASE WHEN valid THEN 'True' ELSE 'False' END END,
            CASE WHEN reason = 'bad_created_at'
                 THEN [created_day, 'not a date', '', '2026-13-02T10:00:00Z'][1 + v % 4]
                 ELSE created_at END
        ) AS full_line,
        CASE WHEN reason = 'malformed_record' THEN (CASE WHEN v % 2 = 0
                 THEN full_line || ',extra'
                 ELSE concat_ws(',', sid, user_id, csv_text(email), scenario_id) END)
             ELSE full_line END AS line
    FROM session_rows()
    UNION ALL BY NAME
    SELECT -1 AS grp, -1 AS o1, -1 AS o2, $header AS line
)
ORDER BY grp, o1, o2;
