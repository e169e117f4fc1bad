"""Deterministic synthetic exports folders, computed set-based inside DuckDB.

Every pseudo-random value is a stable hash of (seed, row number, salt): no Python loop runs
over sessions or users, and two runs with the same arguments write byte-identical files.
The folder follows CONTRACT.md section 1 and carries the oddities a real export has
(offsets and naive timestamps, odd-cased emails, former members, re-graded duplicates,
system users), plus, on request, rows the loader must reject, one reason per row.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from scenario_analytics.ingest.discover import SESSION_REASONS

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")

# The default window ends on this fixed date, so that output does not depend on the clock.
DEFAULT_END_DATE = date(2026, 11, 26)


# Parquet is typed: a row cannot fail to parse, so it cannot carry `malformed_record`.
REASONS_BY_FORMAT: dict[Format, tuple[str, ...]] = {
    "jsonl": SESSION_REASONS,
    "csv": SESSION_REASONS,
    "parquet": SESSION_REASONS[1:],
}

DUPLICATE_RATE = 0.01

# DuckDB spills to a temporary folder past this; a part file is sorted within it.
MEMORY_LIMIT = "1GB"

CSV_SESSION_HEADER = (
    "id,user_id,user_email,user_first_name,user_last_name,scenario_id,scenario_slug,"
    "scenario_name,score,rank,duration_seconds,is_valid_attempt,created_at"
)

_MAX_SEED = 2**63


@dataclass(frozen=True)
class GenerateReport:
    """What `generate_exports` wrote, with the counts a loader should reproduce."""

    out: Path
    files: list[dict[str, object]]
    sessions_written: int
    sessions_unique_valid: int
    duplicates: int
    bad_rows_by_reason: dict[str, int]

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "files": [dict(f) for f in self.files],
            "sessions_written": self.sessions_written,
            "sessions_unique_valid": self.sessions_unique_valid,
            "duplicates": self.duplicates,
            "bad_rows_by_reason": dict(self.bad_rows_by_reason),
        }


@dataclass(frozen=True)
class _Plan:
    """Sizes derived from the arguments; everything else is a hash of the seed."""

    seed: int
    sessions: int
    users: int  # users that can have sessions
    extra_members: int  # members that never practised
    scenarios: int
    groups: int
    orphan_group: bool  # a group id that only memberships know
    parts: int
    bad: int
    reasons: tuple[str, ...]
    start_us: int
    days: int

    def part_bounds(self, part: int) -> tuple[int, int]:
        return part * self.sessions // self.parts, (part + 1) * self.sessions // self.parts

    def duplicate_source(self, part: int) -> tuple[int, int]:
        """Session range whose duplicates are re-written in `part`.

        A duplicate goes to the next part file (an overlapping re-export); the last part's
        own duplicates are repeated at its end, where the later line wins.
        """
        last = part == self.parts - 1
        if part == 0 and not last:
            return 0, 0
        return (
            self.part_bounds(max(part - 1, 0))[0],
            self.part_bounds(part if last else part - 1)[1],
        )

    def bad_by_reason(self) -> dict[str, int]:
        count = len(self.reasons)
        return {
            reason: self.bad // count + (1 if index < self.bad % count else 0)
            for index, reason in enumerate(self.reasons)
        }


def _plan(
    sessions: int, seed: int, fmt: str, bad_rows: float, start_date: str | None, days: int
) -> _Plan:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 0:
        raise ValueError(f"sessions must be a non-negative integer, got {sessions!r}")
    if not -_MAX_SEED <= seed < _MAX_SEED:
        raise ValueError(f"seed must fit in 64 bits, got {seed}")
    if not 0.0 <= bad_rows <= 1.0:
        raise ValueError(f"bad_rows must be a share between 0 and 1, got {bad_rows}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if start_date is None:
        start = date.fromordinal(DEFAULT_END_DATE.toordinal() - (days - 1))
    else:
        try:
            start = date.fromisoformat(start_date)
        except ValueError as exc:
            raise ValueError(f"start_date must be YYYY-MM-DD, got {start_date!r}") from exc
    reasons = REASONS_BY_FORMAT[fmt]
    bad = int(bad_rows * sessions + 0.5)
    if bad_rows > 0 and sessions > 0:
        bad = max(bad, len(reasons))  # every reason the format can express, at least once
    users = max(5, sessions // 40)
    extra_members = max(1, users // 20)
    if sessions < 10:
        parts = 1
    elif sessions < 1000:
        parts = 2
    else:
        parts = min(8, 3 + sessions // 2_000_000)
    return _Plan(
        seed=seed,
        sessions=sessions,
        users=users,
        extra_members=extra_members,
        scenarios=min(500, max(3, sessions // 50_000)),
        groups=max(1, min(20, (users + extra_members) // 4)),
        orphan_group=users + extra_members >= 40,
        parts=parts,
        bad=bad,
        reasons=reasons,
        start_us=(start - date(1970, 1, 1)).days * 86_400_000_000,
        days=days,
    )


# --- SQL ---------------------------------------------------------------------------------
# Values reach SQL as bound parameters or through the one-row `cfg` table; the seed is a
# session variable so that macros can read it.

_SQL_MACROS = (
    # Uniform in [0, 1). Hashing one mixed 64-bit word: DuckDB's multi-argument hash combines
    # its inputs too weakly for independent draws per salt.
    """CREATE TEMP MACRO rnd(x, salt) AS
        (hash(xor(x::UBIGINT, hash(getvariable('seed'), salt))) >> 11)::DOUBLE
        / 9007199254740992.0""",
    "CREATE TEMP MACRO pick(x, salt, k) AS least(floor(rnd(x, salt) * k), k - 1)::BIGINT",
    # x -> (x * odd + c) mod 16^w is a bijection, so ids never collide.
    """CREATE TEMP MACRO hexid(x, salt, w) AS lower(lpad(to_hex((
        (x::HUGEINT * ((hash(getvariable('seed'), salt, 'mul') >> 8)::HUGEINT * 2 + 1)
         + hash(getvariable('seed'), salt, 'add')::HUGEINT) % (1::HUGEINT << (4 * w))
        )::BIGINT), w, '0'))""",
    "CREATE TEMP MACRO iso_z(us) AS strftime(make_timestamp(us), '%Y-%m-%dT%H:%M:%SZ')",
    """CREATE TEMP MACRO rank_of(x) AS CASE WHEN x IS NULL THEN NULL WHEN x >= 90 THEN 'gold'
        WHEN x >= 75 THEN 'silver' WHEN x >= 50 THEN 'bronze' ELSE 'unranked' END""",
    """CREATE TEMP MACRO num_text(x) AS CASE WHEN x IS NULL THEN ''
        WHEN x = trunc(x) THEN x::BIGINT::VARCHAR ELSE x::VARCHAR END""",
    """CREATE TEMP MACRO num_json(x) AS CASE WHEN x IS NULL THEN NULL::JSON
        WHEN x = trunc(x) THEN to_json(x::BIGINT) ELSE to_json(x) END""",
    """CREATE TEMP MACRO csv_text(s) AS CASE WHEN s IS NULL THEN ''
        WHEN contains(s, ',') OR contains(s, '"') OR contains(s, chr(10))
          OR contains(s, chr(13)) THEN '"' || replace(s, '"', '""') || '"'
        ELSE s END""",
)

_SQL_CFG = """
CREATE TEMP TABLE cfg AS SELECT
    $sessions::BIGINT AS n_sessions, $users::BIGINT AS n_users,
    $extra_members::BIGINT AS n_extra, $scenarios::BIGINT AS n_scenarios,
    $groups::BIGINT AS n_groups, $orphan_group::BOOLEAN AS orphan_group,
    $days::BIGINT AS n_days, $start_us::BIGINT AS start_us, $bad::BIGINT AS n_bad,
    $reasons::VARCHAR[] AS reasons, $dup_rate::DOUBLE AS dup_rate
"""

_SQL_SCENARIOS = """
CREATE TEMP TABLE scenarios AS
SELECT
    scn,
    md5('scenario/' || getvariable('seed') || '/' || scn) AS h,
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a'
        || substr(h, 18, 3) || '-' || substr(h, 21, 12) AS scenario_id,
    ['Procurement Discovery', 'Cold Call Opener', 'Pricing Objections', 'Renewal Negotiation',
     'Executive Briefing', 'Demo Follow-up', 'Competitive Displacement',
     'The "Budget Freeze" Call', 'Security Review', 'Onboarding Kickoff', 'Churn Risk Save',
     'Upsell Conversation', 'Contract Redlines', 'Champion Building',
     'Multi-threading the Deal', 'Discovery: Pain, Impact & Urgency',
     'Handling "Send Me Info"', 'Quarterly Business Review', 'Pilot Scoping',
     'Difficult Customer Escalation', 'Price Increase Announcement', 'Reference Call Prep',
     'Partner Co-sell Pitch', 'Procurement Final Round', 'Café Owner Pitch'][1 + scn % 25]
        AS topic,
    scn // 25 AS level,
    CASE WHEN level = 0 THEN topic
         ELSE topic || ' ' || ['II', 'Advanced', 'for Managers', '(EMEA)', 'Speed Round'][
              1 + (level - 1) % 5]
              || CASE WHEN level > 5 THEN ' ' || ((level - 1) // 5 + 1) ELSE '' END
    END AS scenario_name,
    trim(regexp_replace(lower(strip_accents(scenario_name)), '[^a-z0-9]+', '-', 'g'), '-')
        AS scenario_slug,
    'Practice: ' || scenario_name || '.' AS description,
    ['beginner', 'intermediate', 'advanced'][1 + pick(scn, 'difficulty', 3)] AS difficulty,
    iso_z(start_us - (30 + pick(scn, 'created', 300)) * 86400000000) AS created_at,
    iso_z(start_us - pick(scn, 'updated', 30) * 86400000000) AS updated_at,
    -- the last scenario was archived: its sessions remain, its export row does not
    scn <> n_scenarios - 1 AS in_export
FROM range((SELECT n_scenarios FROM cfg)) r(scn), cfg
"""

_SQL_USERS = """
CREATE TEMP TABLE users AS
SELECT
    u,
    'u' || hexid(u, 'user', 11) AS user_id,
    ['Jane', 'John', 'Priya', 'Wei', 'Fatima', 'Lukas', 'Zoë', 'José', 'Aoife', 'Kwame',
     'Mei', 'Carlos', 'Anna', 'Omar', 'Sofia', 'Liam', 'Yuki', 'Noah', 'Emma', 'Łukasz',
     'Chloé', 'Arjun', 'Ingrid', 'Mateo', 'Sara', 'David', 'Amara', 'Hiro', 'Elena', 'Tom',
     'Nadia', 'Björn', 'Grace', 'Ravi', 'Lea', 'Sam', 'Olu', 'Marta', 'Ivan', 'Siobhán'][
        1 + pick(u, 'first_name', 40)] AS first_name,
    ['Smith', 'Nguyễn', 'García', 'Müller', 'O''Brien', 'Kowalski', 'Chen', 'Okafor',
     'Rossi', 'Dubois', 'Tanaka', 'Silva', 'Johnson', 'Novak', 'Haddad', 'Kim', 'Patel',
     'Larsen', 'Brown', 'Fernández', 'Schmidt', 'Ivanova', 'Mensah', 'Cohen', 'Jensen',
     'Martin', 'López', 'Wójcik', 'Sato', 'Walker', 'Nakamura', 'Eriksson', 'Costa',
     'Moreau', 'Ali', 'Singh', 'Hughes', 'Van der Berg', 'Da Silva', 'St. John'][
        1 + pick(u, 'last_name', 40)] AS last_name,
    regexp_replace(lower(strip_accents(first_name || '.' || last_name)), '[^a-z.]', '', 'g')
        || u AS local_part,
    rnd(u, 'domain') AS rd,
    -- ~3% system users (exec.com in any case), and look-alikes that are not
    CASE WHEN u = 1 OR rd < 0.02 THEN 'exec.com' WHEN rd < 0.03 THEN 'EXEC.com'
         WHEN rd < 0.035 THEN 'notexec.com' WHEN rd < 0.04 THEN 'mail.exec.com'
         WHEN rd < 0.88 THEN 'acme.com' WHEN rd < 0.95 THEN 'acme.co.uk' ELSE 'gmail.com'
    END AS domain,
    local_part || '@' || domain AS email,
    -- a few users' sessions still carry an address they have since changed
    CASE WHEN rnd(u, 'moved') < 0.02 THEN local_part || '@acme-legacy.com' ELSE email END
        AS session_email,
    -- ~5% former members: sessions, but no members row
    NOT (u < n_users AND (u = 3 OR rnd(u, 'former') < 0.05)) AS is_member,
    CASE WHEN u = 4 OR rnd(u, 'no_email') < 0.02 THEN '' ELSE email END AS member_email,
    rnd(u, 'role') AS rr,
    CASE WHEN u = 0 OR rr < 0.03 THEN 'admin' WHEN rr < 0.15 THEN 'staff' ELSE 'member' END
        AS role,
    iso_z(start_us - (1 + pick(u, 'joined', 400)) * 86400000000
          + pick(u, 'joined_at', 86400) * 1000000) AS member_created_at,
    -- practises 1-4 scenarios, popular ones (low index) more often
    1 + least(floor(4 * pow(rnd(u, 'n_scenarios'), 1.6)), 3)::BIGINT AS n_scn,
    floor(n_scenarios * pow(rnd(u, 'first_scenario'), 2))::BIGINT AS scn_first,
    1 + pick(u, 'scenario_step', greatest(n_scenarios - 1, 1)) AS scn_step,
    CASE WHEN NOT is_member OR rnd(u, 'grouped') < 0.15 THEN 0
         ELSE 1 + pick(u, 'n_groups', 3) END AS n_grp,
    pick(u, 'first_group', n_groups) AS grp_first,
    1 + pick(u, 'group_step', greatest(n_groups - 1, 1)) AS grp_step
FROM range((SELECT n_users + n_extra FROM cfg)) r(u), cfg
"""

_SQL_GROUPS = """
CREATE TEMP TABLE groups AS
SELECT
    g,
    'g' || hexid(g, 'group', 11) AS group_id,
    ['Sales EMEA', 'Sales NA', 'Sales APAC', 'Customer Success', 'Solutions Engineering',
     'SDR Team', 'Enterprise AEs', 'Mid-Market AEs', 'Partnerships', 'Leadership',
     'New Hires Q3', 'New Hires Q4', 'Renewals', 'Support', 'Marketing', 'RevOps',
     'Field Sales DACH', 'Field Sales France', 'Inside Sales', 'Coaches'][1 + g % 20] AS name,
    iso_z(start_us - (10 + pick(g, 'created', 500)) * 86400000000) AS created_at,
    g < n_groups AS in_export
FROM range((SELECT n_groups + orphan_group::BIGINT FROM cfg)) r(g), cfg
"""

# A set of pairs, plus a few pairs listed twice and members of a group the groups export
# no longer has.
_SQL_MEMBERSHIPS = """
CREATE TEMP TABLE memberships AS
WITH pairs AS (
    SELECT DISTINCT u, g FROM (
        SELECT u, (grp_first + j * grp_step) % n_groups AS g
        FROM users, range(3) r(j), cfg WHERE j < n_grp
        UNION ALL
        SELECT u, n_groups FROM users, cfg
        WHERE orphan_group AND is_member AND rnd(u, 'orphan') < 0.05
    )
)
SELECT g.group_id, us.user_id, 0 AS listed FROM pairs p
JOIN users us USING (u) JOIN groups g USING (g)
UNION ALL
SELECT g.group_id, us.user_id, 1 FROM users us
JOIN groups g ON g.g = us.grp_first
WHERE us.n_grp > 0 AND rnd(us.u, 'listed_twice') < 0.02
"""

_SQL_DUPLICATES = """
CREATE TEMP TABLE dups AS
SELECT i FROM range((SELECT n_sessions FROM cfg)) r(i), cfg WHERE rnd(i, 'duplicate') < dup_rate
"""

# One row per session line of one part file: the good sessions [lo, hi), the duplicates of
# [dlo, dhi) (re-exported from the previous part, or repeated at the end of the last one),
# and the bad rows placed among [lo, hi). `gi` places a row in time and picks its user;
# `idn` names it and drives every other draw. Materialized per part: DuckDB's range() is
# read by one thread, a table scan by all of them.
_SQL_SLOTS = """
CREATE OR REPLACE TEMP TABLE slots AS
SELECT i AS gi, i AS idn, 1 AS grp, i AS o1, -1::BIGINT AS o2, NULL::BIGINT AS bk,
       false AS is_dup
FROM range($lo, $hi) r(i)
UNION ALL
SELECT i, i, CASE WHEN i < $lo THEN 0 ELSE 2 END, i, -1, NULL, true
FROM dups WHERE i >= $dlo AND i < $dhi
UNION ALL
SELECT pos, n_sessions + k, 1, pos, k, k, false FROM (
    SELECT k, ((2 * k + 1) * n_sessions) // (2 * n_bad) AS pos, n_sessions
    FROM range((SELECT n_bad FROM cfg)) r(k), cfg
) WHERE pos >= $lo AND pos < $hi
"""

_SQL_SESSION_ROWS = """
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
FROM attributed a JOIN scenarios sc USING (scn)
"""

# Session rows as the API returns them, one JSON object per line.
_SQL_SESSIONS_JSONL = """
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
ORDER BY grp, o1, o2
"""

# Flat CSV lines, written verbatim so that a malformed row (wrong column count) can exist.
_SQL_SESSIONS_CSV = """
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
ORDER BY grp, o1, o2
"""

# Typed columns with nested structs, as a warehouse export of the API objects would be.
_SQL_SESSIONS_PARQUET = """
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
ORDER BY grp, o1, o2
"""

_SQL_SESSIONS: dict[Format, str] = {
    "jsonl": _SQL_SESSIONS_JSONL,
    "csv": _SQL_SESSIONS_CSV,
    "parquet": _SQL_SESSIONS_PARQUET,
}

_SQL_SCENARIO_RECORDS = """
SELECT scenario_id AS id, scenario_name AS name, scenario_slug AS slug, description,
       difficulty, 'workspace' AS visibility, created_at, updated_at
FROM scenarios WHERE in_export ORDER BY scn
"""

_SQL_MEMBER_RECORDS = """
SELECT user_id AS id, member_email AS email, first_name, last_name, role,
       member_created_at AS created_at
FROM users WHERE is_member ORDER BY u
"""

# The first column's name carries a UTF-8 byte order mark, which the contract tolerates.
_SQL_MEMBER_RECORDS_BOM = """
SELECT user_id AS "\ufeffid", member_email AS email, first_name, last_name, role,
       member_created_at AS created_at
FROM users WHERE is_member ORDER BY u
"""

_SQL_GROUP_RECORDS = """
SELECT group_id AS id, name, created_at FROM groups WHERE in_export ORDER BY g
"""

# One API list page (the groups export always fits in one page of at most 100).
_SQL_GROUP_PAGE = """
SELECT json_object(
    'data', coalesce(to_json(list(json_object('id', group_id, 'name', name,
                                              'created_at', created_at) ORDER BY g)),
                     '[]'::JSON),
    'pagination', json_object('page', 1, 'page_size', 100, 'total_count', count(*),
                              'total_pages', 1))::VARCHAR AS line
FROM groups WHERE in_export
"""

_SQL_GROUP_COUNT = "SELECT count(*) FROM groups WHERE in_export"

_SQL_MEMBERSHIP_RECORDS = """
SELECT group_id, user_id FROM memberships ORDER BY group_id, user_id, listed
"""

_COPY_OPTIONS = {
    "parquet": "(FORMAT PARQUET, COMPRESSION ZSTD)",
    "csv": "(FORMAT CSV, HEADER true)",
    "jsonl": "(FORMAT JSON)",
    # one text line per row, written as is
    "lines": "(FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER E'\\x1f')",
    # an API list page: one line that holds every record
    "page": "(FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER E'\\x1f')",
}

# entity -> (relative path, query, writer) by format; the page and the BOM show the loader
# more of the accepted shapes.
_SMALL_ENTITIES: tuple[tuple[str, dict[Format, tuple[str, str, str]]], ...] = (
    (
        "scenarios",
        {
            "jsonl": ("scenarios.jsonl", _SQL_SCENARIO_RECORDS, "jsonl"),
            "csv": ("scenarios.csv", _SQL_SCENARIO_RECORDS, "csv"),
            "parquet": ("scenarios.parquet", _SQL_SCENARIO_RECORDS, "parquet"),
        },
    ),
    (
        "members",
        {
            "jsonl": ("members.jsonl", _SQL_MEMBER_RECORDS, "jsonl"),
            "csv": ("members.csv", _SQL_MEMBER_RECORDS_BOM, "csv"),
            "parquet": ("members.parquet", _SQL_MEMBER_RECORDS, "parquet"),
        },
    ),
    (
        "groups",
        {
            "jsonl": ("groups.json", _SQL_GROUP_PAGE, "page"),
            "csv": ("groups.csv", _SQL_GROUP_RECORDS, "csv"),
            "parquet": ("groups.parquet", _SQL_GROUP_RECORDS, "parquet"),
        },
    ),
    (
        "group_memberships",
        {
            "jsonl": ("group_memberships.csv", _SQL_MEMBERSHIP_RECORDS, "csv"),
            "csv": ("group_memberships.csv", _SQL_MEMBERSHIP_RECORDS, "csv"),
            "parquet": ("group_memberships.parquet", _SQL_MEMBERSHIP_RECORDS, "parquet"),
        },
    ),
)


def _copy(
    con: duckdb.DuckDBPyConnection,
    query: str,
    target: Path,
    writer: str,
    params: dict[str, object] | None = None,
) -> int:
    """Write `query`'s rows to `target`; return the number of rows written."""
    statement = f"COPY ({query}) TO $path {_COPY_OPTIONS[writer]}"
    row = con.execute(statement, {**(params or {}), "path": str(target)}).fetchone()
    return int(row[0]) if row else 0


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    row = con.execute(query).fetchone()
    return int(row[0]) if row else 0


def generate_exports(
    out: Path,
    sessions: int,
    seed: int = 0,
    fmt: Format = "parquet",
    bad_rows: float = 0.0,
    *,
    start_date: str | None = None,
    days: int = 90,
) -> GenerateReport:
    """Write a synthetic exports folder to `out` and report what it holds.

    `sessions` good sessions with distinct ids are spread over `days` days starting on
    `start_date` (default: the window ending on 2026-11-26); about 1% of them are written a
    second time in a later part file, and `round(bad_rows * sessions)` extra rows (at least
    one per reason the format can express when `bad_rows > 0`) must be rejected by the
    loader, spread evenly over the reasons.
    """
    plan = _plan(sessions, seed, fmt, bad_rows, start_date, days)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"output folder is not empty: {out}")
    (out / "sessions").mkdir()

    files: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="generate-spill-") as spill:
        con = duckdb.connect(config={"temp_directory": spill, "memory_limit": MEMORY_LIMIT})
        try:
            _prepare(con, plan)
            for entity, layouts in _SMALL_ENTITIES:
                relative, query, writer = layouts[fmt]
                rows = _copy(con, query, out / relative, writer)
                if writer == "page":
                    rows = _count(con, _SQL_GROUP_COUNT)
                files.append({"path": relative, "entity": entity, "rows": rows})
            for part in range(plan.parts):
                relative = f"sessions/part-{part + 1:04d}.{fmt}"
                lo, hi = plan.part_bounds(part)
                dlo, dhi = plan.duplicate_source(part)
                con.execute(_SQL_SLOTS, {"lo": lo, "hi": hi, "dlo": dlo, "dhi": dhi})
                params: dict[str, object] | None = (
                    {"header": CSV_SESSION_HEADER} if fmt == "csv" else None
                )
                writer = "parquet" if fmt == "parquet" else "lines"
                rows = _copy(con, _SQL_SESSIONS[fmt], out / relative, writer, params)
                if fmt == "csv":
                    rows -= 1  # the header line
                files.append({"path": relative, "entity": "sessions", "rows": rows})
            duplicates = _count(con, "SELECT count(*) FROM dups")
        finally:
            con.close()

    files.sort(key=lambda f: str(f["path"]))
    return GenerateReport(
        out=out,
        files=files,
        sessions_written=plan.sessions + duplicates + plan.bad,
        sessions_unique_valid=plan.sessions,
        duplicates=duplicates,
        bad_rows_by_reason=plan.bad_by_reason(),
    )


def _prepare(con: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
    """Create the macros and the small tables every session row draws from."""
    con.execute("SET VARIABLE seed = $seed::BIGINT", {"seed": plan.seed})
    for statement in _SQL_MACROS:
        con.execute(statement)
    con.execute(
        _SQL_CFG,
        {
            "sessions": plan.sessions,
            "users": plan.users,
            "extra_members": plan.extra_members,
            "scenarios": plan.scenarios,
            "groups": plan.groups,
            "orphan_group": plan.orphan_group,
            "days": plan.days,
            "start_us": plan.start_us,
            "bad": plan.bad,
            "reasons": list(plan.reasons),
            "dup_rate": DUPLICATE_RATE,
        },
    )
    for statement in (
        _SQL_SCENARIOS,
        _SQL_USERS,
        _SQL_GROUPS,
        _SQL_MEMBERSHIPS,
        _SQL_DUPLICATES,
    ):
        con.execute(statement)
    con.execute(_SQL_SLOTS, {"lo": 0, "hi": 0, "dlo": 0, "dhi": 0})  # the macro binds to it
    con.execute(_SQL_SESSION_ROWS)
