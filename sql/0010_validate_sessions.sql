-- Purpose: type every raw session row and give the first reject reason that applies (or none).
-- Grain: one row per session row read from the exports (raw_sessions), accepted or rejected.
-- Phase: build
-- Scope: per-file (a row is judged on its own fields only; the ledger keeps the result per file)
CREATE OR REPLACE TABLE staged_sessions AS
WITH typed AS (
    SELECT
        file_id,
        pos,
        kind,
        raw,
        malformed,
        CASE WHEN id_t IN ('string', 'integer', 'text')
              AND (ascii(id) > 32 OR trim(id, E' \t\n\r') <> '') THEN id END AS session_id,
        CASE WHEN user_id_t IN ('string', 'integer', 'text')
              AND (ascii(user_id) > 32 OR trim(user_id, E' \t\n\r') <> '') THEN user_id END
            AS user_id,
        CASE WHEN scenario_id_t IN ('string', 'integer', 'text')
              AND (ascii(scenario_id) > 32 OR trim(scenario_id, E' \t\n\r') <> '')
            THEN scenario_id END AS scenario_id,
        CASE WHEN user_email_t IN ('string', 'text') THEN user_email END AS user_email,
        -- Names: text only, like emails (anything else is NULL; a name never rejects a row).
        CASE WHEN user_first_name_t IN ('string', 'text') THEN user_first_name END
            AS user_first_name,
        CASE WHEN user_last_name_t IN ('string', 'text') THEN user_last_name END
            AS user_last_name,
        CASE WHEN scenario_slug_t IN ('string', 'text') THEN scenario_slug END AS scenario_slug,
        CASE WHEN scenario_name_t IN ('string', 'text') THEN scenario_name END AS scenario_name,
        -- created_at: YYYY-MM-DD, T or space, HH:MM, optional :SS and fraction, optional
        -- Z or +-HH[:MM], with white space around it. The pattern decides what is
        -- accepted (the common, untrimmed case is matched first: a trim costs as much as
        -- the match); the cast (session time zone UTC, so no offset means UTC) converts,
        -- dropping fraction digits beyond 6, and the epoch turns it into a plain
        -- TIMESTAMP without a time zone conversion per row.
        make_timestamp(epoch_us(TRY_CAST(
            CASE WHEN created_at_t NOT IN ('string', 'text') THEN NULL
                 WHEN regexp_full_match(created_at, '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]'
                          || '([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]+)?)?'
                          || '(Z|[+-]([01][0-9]|2[0-3])(:[0-5][0-9])?)?')
                     THEN created_at
                 WHEN regexp_full_match(created_at, '[ \t\n\r]*[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]'
                          || '([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]+)?)?'
                          || '(Z|[+-]([01][0-9]|2[0-3])(:[0-5][0-9])?)?[ \t\n\r]*')
                     THEN trim(created_at, E' \t\n\r')
            END AS TIMESTAMP WITH TIME ZONE))) AS created_at,
        -- Numbers: JSON/Parquet numbers, or CSV text that is written as a decimal number
        -- (the casts alone would also take `1_000`); a JSON string is not a number.
        -- (Typed numbers are never padded: only CSV text is trimmed.)
        CASE WHEN score_t IN ('integer', 'number') THEN
            coalesce(TRY_CAST(score AS DECIMAL(38, 20)),
                     TRY_CAST(TRY_CAST(score AS DOUBLE) AS DECIMAL(38, 20)))
             WHEN score_t = 'text' AND regexp_full_match(trim(score, E' \t'),
                                     '[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?') THEN
            coalesce(
                TRY_CAST(trim(score, E' \t') AS DECIMAL(38, 20)),
                TRY_CAST(TRY_CAST(trim(score, E' \t') AS DOUBLE) AS DECIMAL(38, 20)))
        END AS score_value,
        score_t IS NOT NULL AND score_t <> 'null' AS score_present,
        CASE WHEN duration_seconds_t IN ('integer', 'number') THEN
            coalesce(TRY_CAST(duration_seconds AS DECIMAL(38, 20)),
                     TRY_CAST(TRY_CAST(duration_seconds AS DOUBLE) AS DECIMAL(38, 20)))
             WHEN duration_seconds_t = 'text'
                 AND regexp_full_match(trim(duration_seconds, E' \t'),
                                       '[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?') THEN
            coalesce(
                TRY_CAST(trim(duration_seconds, E' \t') AS DECIMAL(38, 20)),
                TRY_CAST(TRY_CAST(trim(duration_seconds, E' \t') AS DOUBLE)
                         AS DECIMAL(38, 20)))
        END AS duration_value,
        duration_seconds_t IS NOT NULL AND duration_seconds_t <> 'null' AS duration_present,
        CASE
            WHEN is_valid_attempt_t = 'boolean' THEN is_valid_attempt = 'true'
            WHEN is_valid_attempt_t = 'text'
                AND lower(trim(is_valid_attempt, E' \t')) IN ('true', '1') THEN true
            WHEN is_valid_attempt_t = 'text'
                AND lower(trim(is_valid_attempt, E' \t')) IN ('false', '0') THEN false
        END AS is_valid_attempt
    FROM raw_sessions
),
judged AS (
    SELECT
    file_id,
    pos,
    kind,
    raw,
    CASE
        WHEN malformed THEN 'malformed_record'
        WHEN session_id IS NULL THEN 'missing_id'
        WHEN user_id IS NULL THEN 'missing_user_id'
        WHEN scenario_id IS NULL THEN 'missing_scenario_id'
        WHEN created_at IS NULL THEN 'bad_created_at'
        WHEN score_present AND (score_value IS NULL OR score_value < 0 OR score_value > 100)
            THEN 'bad_score'
        -- Over a year (31,536,000 s) is no practice session, and near 10^18 the sums of
        -- 0140 would overflow: such a value is a reject, never a failed night.
        WHEN duration_present
             AND (duration_value IS NULL OR duration_value < 0 OR duration_value > 31536000)
            THEN 'bad_duration'
        WHEN is_valid_attempt IS NULL THEN 'bad_is_valid_attempt'
        WHEN is_valid_attempt AND NOT score_present THEN 'valid_attempt_without_score'
    END AS reject_reason,
    session_id,
    user_id,
    scenario_id,
    user_email,
    user_first_name,
    user_last_name,
    scenario_slug,
    scenario_name,
    created_at,
    CAST(CASE WHEN score_value BETWEEN 0 AND 100 THEN score_value END AS DECIMAL(9, 4)) AS score,
    CAST(CASE WHEN duration_value >= 0 THEN duration_value END AS DECIMAL(38, 6))
        AS duration_seconds,
    is_valid_attempt
FROM typed
)
-- Raw text is kept for rejected rows only: accepted rows are in the exports already.
SELECT
    file_id, pos, kind, CASE WHEN reject_reason IS NOT NULL THEN raw END AS raw, reject_reason,
    session_id, user_id, scenario_id, user_email, user_first_name, user_last_name,
    scenario_slug, scenario_name, created_at, score, duration_seconds, is_valid_attempt
FROM judged;
