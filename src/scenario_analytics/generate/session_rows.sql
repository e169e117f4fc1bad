-- Purpose: the table macro `session_rows()`: every value of the current part's session lines.
CREATE TEMP MACRO session_rows() AS TABLE
WITH placed AS (
    -- users are active for ~35% of the window, starting at staggered times; every fifth
    -- user practises more
    SELECT s.*,
        (s.gi + rnd(s.gi, 'time')) / c.n_sessions AS t,
        least(c.n_users - 1,
              floor((t - 0.35 * rnd(s.gi, 'window') + 0.35) / 1.35 * c.n_users))::BIGINT
            AS u_near,
        CASE WHEN rnd(s.gi, 'heavy') < 0.25 THEN u_near - u_near % 5 ELSE u_near END AS u,
        greatest(0.0, least(1.0, (t - ((u + 0.5) / c.n_users * 1.35 - 0.35)) / 0.35))
            AS progress,
        t * c.n_days AS day_f,
        floor(day_f) AS day_n,
        day_f - day_n AS f,
        -- most sessions in working hours
        CASE WHEN f < 0.06 THEN f / 0.06 * 7 WHEN f < 0.90 THEN 7 + (f - 0.06) / 0.84 * 12
             ELSE 19 + (f - 0.90) / 0.10 * 5 END AS hour_f,
        c.start_us + day_n::BIGINT * 86400000000 + floor(hour_f * 3600000000)::BIGINT AS ts_us,
        c.reasons[1 + s.bk % len(c.reasons)] AS reason,
        s.bk // len(c.reasons) AS v,
        c.n_scenarios
    FROM slots s, cfg c
),
attributed AS (
    SELECT p.*,
        us.user_id, us.first_name, us.last_name, us.session_email,
        (us.scn_first + least(floor(us.n_scn * pow(rnd(p.idn, 'scenario'), 1.3)),
                              us.n_scn - 1)::BIGINT * us.scn_step) % p.n_scenarios AS scn
    FROM placed p JOIN users us USING (u)
)
SELECT
    a.grp, a.o1, a.o2, a.reason, a.v,
    hexid(a.idn, 'session', 12) AS sid,
    a.user_id, a.first_name, a.last_name,
    rnd(a.idn, 'email_style') AS es,
    CASE WHEN es < 0.90 THEN a.session_email WHEN es < 0.94 THEN upper(a.session_email)
         WHEN es < 0.975 THEN '  ' || a.session_email || ' ' END AS email,
    sc.scenario_id, sc.scenario_name, sc.scenario_slug,
    -- scores rise with practice on each (user, scenario)
    a.u * 4096 + a.scn AS pair,
    greatest(0.0, least(100.0, 25 + 45 * rnd(pair, 'skill')
        + (5 + 35 * rnd(pair, 'gain')) * sqrt(a.progress)
        + (rnd(a.idn, 'noise') - 0.5) * 14)) AS x,
    rnd(a.idn, 'digits') AS rdg,
    CASE WHEN rdg < 0.03 THEN (CASE WHEN x < 62.5 THEN 50 WHEN x < 82.5 THEN 75 ELSE 90 END)
         WHEN rdg < 0.40 THEN round(x, 0) WHEN rdg < 0.70 THEN round(x, 1)
         ELSE round(x, 2) END::DOUBLE AS graded,
    rnd(a.idn, 'valid') >= 0.10 AS valid,
    CASE WHEN valid OR rnd(a.idn, 'scored') < 0.3 THEN graded END AS first_score,
    -- a re-exported copy is sometimes re-graded
    CASE WHEN a.is_dup AND valid AND rnd(a.idn, 'regrade') < 0.5
         THEN least(100.0, round(first_score + 0.5 + 9.5 * rnd(a.idn, 'regrade_by'), 1))
         ELSE first_score END AS score,
    60 + 1140 * rnd(a.idn, 'duration') * rnd(a.idn, 'duration_2') AS dur_f,
    CASE WHEN rnd(a.idn, 'no_duration') < 0.04 THEN NULL
         WHEN rnd(a.idn, 'duration_digits') < 0.1 THEN round(dur_f, 1)
         ELSE round(dur_f, 0) END::DOUBLE AS duration,
    make_timestamp(a.ts_us) AS ts,
    [120, -300, 330, 60, -480, 540][1 + pick(a.idn, 'zone', 6)] AS off_min,
    ts + to_minutes(off_min) AS local_ts,
    printf('%s%02d', CASE WHEN off_min < 0 THEN '-' ELSE '+' END, abs(off_min) // 60)
        AS off_hh,
    off_hh || printf(':%02d', abs(off_min) % 60) AS off_hhmm,
    rnd(a.idn, 'time_style') AS tsr,
    CASE WHEN tsr < 0.62 THEN strftime(ts, '%Y-%m-%dT%H:%M:%SZ')
         WHEN tsr < 0.74 THEN strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ')
         WHEN tsr < 0.76 THEN strftime(ts, '%Y-%m-%dT%H:%M:%S.%gZ')
         WHEN tsr < 0.77 THEN strftime(ts, '%Y-%m-%dT%H:%M:%S.%f') || '999Z'
         WHEN tsr < 0.85 THEN strftime(local_ts, '%Y-%m-%dT%H:%M:%S') || off_hhmm
         WHEN tsr < 0.86 THEN strftime(local_ts, '%Y-%m-%dT%H:%M:%S.%f')
              || CASE WHEN off_min % 60 = 0 THEN off_hh ELSE off_hhmm END
         WHEN tsr < 0.92 THEN strftime(ts, '%Y-%m-%d %H:%M:%S')
         WHEN tsr < 0.96 THEN strftime(ts, '%Y-%m-%dT%H:%M:%S')
         WHEN tsr < 0.98 THEN strftime(ts, '%Y-%m-%dT%H:%MZ')
         ELSE strftime(ts, '%Y-%m-%d %H:%M:%S.%f') || '+00:00' END AS created_at,
    strftime(ts, '%Y-%m-%d') AS created_day,
    rnd(a.idn, 'extra') < 0.04 AS extra,
    rnd(a.idn, 'text_style') AS txs
FROM attributed a JOIN scenarios sc USING (scn);
