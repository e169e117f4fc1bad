-- Purpose: the one-row table `cfg`: the run's sizes and settings, from bound parameters.
CREATE TEMP TABLE cfg AS SELECT
    $sessions::BIGINT AS n_sessions, $users::BIGINT AS n_users,
    $extra_members::BIGINT AS n_extra, $scenarios::BIGINT AS n_scenarios,
    $groups::BIGINT AS n_groups, $orphan_group::BOOLEAN AS orphan_group,
    $days::BIGINT AS n_days, $start_us::BIGINT AS start_us, $bad::BIGINT AS n_bad,
    $reasons::VARCHAR[] AS reasons, $dup_rate::DOUBLE AS dup_rate;
