"""A small, deliberately plain pure-Python model of the summary (CONTRACT.md, section 2).

The SQL pipeline parses, validates and de-duplicates the exports; this model starts from
records that are already accepted and de-duplicated, and recomputes the summary the slow,
obvious way so property tests can compare the two. Clarity beats speed here: it runs on a
few thousand sessions at most.

All arithmetic is ``decimal.Decimal`` (never float) in a local context of 50 significant
digits. That is exact enough for every rounding below: a mean such as ``sum / n`` of
scores with at most 4 (durations: 6) decimal places is either a terminating decimal far
shorter than 50 digits, or at least ``1 / (n * 10**6)`` away from any ``x.x5`` tie, so
rounding the 50-digit quotient gives the same result as rounding the exact value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

__all__ = [
    "RANKS",
    "REFERENCE_EXAMPLE_DIR",
    "SYSTEM_EMAIL_SUFFIX",
    "WHITESPACE",
    "Member",
    "Request",
    "Session",
    "end_of_day",
    "is_system_email",
    "load_reference_example",
    "load_sessions_jsonl",
    "normalize_email",
    "participants",
    "participants_page",
    "rank",
    "round0",
    "round1",
    "summary",
    "user_emails",
    "user_names",
]

PRECISION = 50
SYSTEM_EMAIL_SUFFIX = "@exec.com"
# "Trimmed" means ASCII white space at both ends; the SQL side must trim the same set.
WHITESPACE = " \t\n\r\f\v"
# Order of the score distribution, best first.
RANKS = ("gold", "silver", "bronze", "unranked")

REFERENCE_EXAMPLE_DIR = Path(__file__).resolve().parent / "data" / "reference-example"


@dataclass(frozen=True)
class Session:
    """One accepted, de-duplicated session."""

    id: str
    user_id: str
    scenario_id: str
    created_at: datetime  # timezone-aware (UTC), microsecond precision
    is_valid_attempt: bool
    score: Decimal | None  # already rounded to 4 places
    duration_seconds: Decimal | None
    email: str | None = None  # the email written on this session record, raw
    first_name: str | None = None  # the names written on it, raw
    last_name: str | None = None


@dataclass(frozen=True)
class Member:
    """One de-duplicated workspace member."""

    id: str
    email: str | None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class Request:
    """Already-parsed filter parameters; empty tuples and ``None`` mean no filter."""

    user_ids: tuple[str, ...] = ()
    user_emails: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    start: datetime | None = None  # aware, inclusive
    end: datetime | None = None  # aware, inclusive
    exclude_system_users: bool = False


# --- small helpers -------------------------------------------------------------------------


def _id_key(identifier: str) -> bytes:
    """Ids compare as text in byte order (UTF-8)."""
    return identifier.encode("utf-8")


def _trim(text: str) -> str:
    return text.strip(WHITESPACE)


def normalize_email(email: str | None) -> str | None:
    """Trimmed and lower-cased; ``None`` when absent or empty after trimming."""
    if email is None:
        return None
    normalized = _trim(email).lower()
    return normalized or None


def is_system_email(email: str | None) -> bool:
    """A system user's email ends with ``@exec.com`` (after trimming and lower-casing)."""
    normalized = normalize_email(email)
    return normalized is not None and normalized.endswith(SYSTEM_EMAIL_SUFFIX)


def round1(x: Decimal) -> Decimal:
    """Round half away from zero to 1 decimal place (Python's ROUND_HALF_UP is exactly that)."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return x.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def round0(x: Decimal) -> int:
    """Round half away from zero to an integer."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return int(x.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _divide(numerator: Decimal, denominator: Decimal | int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return numerator / Decimal(denominator)


def rank(score: Decimal) -> str:
    """gold >= 90, silver >= 75, bronze >= 50, else unranked."""
    if score >= 90:
        return "gold"
    if score >= 75:
        return "silver"
    if score >= 50:
        return "bronze"
    return "unranked"


def end_of_day(day: date) -> datetime:
    """The last microsecond of a UTC day."""
    return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=UTC)


def _check_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware: {value!r}")


def _check_inputs(sessions: Sequence[Session], members: Sequence[Member]) -> None:
    """The model's inputs are already validated and de-duplicated; catch misuse early."""
    seen_sessions: set[str] = set()
    for session in sessions:
        if session.id in seen_sessions:
            raise ValueError(f"duplicate session id {session.id!r}: de-duplicate first")
        seen_sessions.add(session.id)
        _check_aware(session.created_at, f"session {session.id!r} created_at")
        if session.is_valid_attempt and session.score is None:
            raise ValueError(f"session {session.id!r} is a valid attempt without a score")
    seen_members: set[str] = set()
    for member in members:
        if member.id in seen_members:
            raise ValueError(f"duplicate member id {member.id!r}: de-duplicate first")
        seen_members.add(member.id)


# --- users and emails ----------------------------------------------------------------------


def user_emails(sessions: Sequence[Session], members: Sequence[Member]) -> dict[str, str | None]:
    """User id -> normalized email, for every user seen in ``sessions`` or ``members``.

    The member's email when the user is a member and it is not empty after trimming;
    otherwise the email of the user's latest session that has a non-empty one (latest
    ``created_at``, then highest session id in byte order), over ALL sessions given
    (every scenario, any date, graded or not); otherwise ``None``.
    """
    _check_inputs(sessions, members)
    emails: dict[str, str | None] = {}

    latest: dict[str, Session] = {}
    for session in sessions:
        emails.setdefault(session.user_id, None)
        if normalize_email(session.email) is None:
            continue
        current = latest.get(session.user_id)
        if current is None or (session.created_at, _id_key(session.id)) > (
            current.created_at,
            _id_key(current.id),
        ):
            latest[session.user_id] = session
    for user_id, session in latest.items():
        emails[user_id] = normalize_email(session.email)

    for member in members:
        member_email = normalize_email(member.email)
        if member_email is not None:
            emails[member.id] = member_email
        else:
            emails.setdefault(member.id, None)
    return emails


def _named(value: str | None) -> str | None:
    """A name as written, or None when absent or blank after trimming."""
    return value if value is not None and _trim(value) else None


def user_names(
    sessions: Sequence[Session], members: Sequence[Member]
) -> dict[str, tuple[str | None, str | None]]:
    """User id -> (first name, last name), each chosen as the email is, field by field:
    the member's when not blank, else that of the user's latest session (latest
    ``created_at``, then highest id) that has a non-blank one; kept as written."""
    names: dict[str, tuple[str | None, str | None]] = {}
    by_user: dict[str, list[Session]] = {}
    for session in sessions:
        by_user.setdefault(session.user_id, []).append(session)
    members_by_id = {m.id: m for m in members}
    for user_id in set(by_user) | set(members_by_id):
        latest_first = sorted(
            by_user.get(user_id, []), key=lambda s: (s.created_at, _id_key(s.id)), reverse=True
        )
        picked: list[str | None] = []
        for field_name in ("first_name", "last_name"):
            member = members_by_id.get(user_id)
            value = _named(getattr(member, field_name)) if member is not None else None
            if value is None:
                value = next(
                    (v for s in latest_first if (v := _named(getattr(s, field_name)))), None
                )
            picked.append(value)
        names[user_id] = (picked[0], picked[1])
    return names


# --- the summary ---------------------------------------------------------------------------


def _request_items(items: Iterable[str]) -> set[str]:
    """List items are trimmed and empty items ignored (idempotent on parsed requests)."""
    return {_trim(item) for item in items if _trim(item)}


def _filtered_sessions(
    scenario_id: str,
    sessions: Sequence[Session],
    members: Sequence[Member],
    memberships: Iterable[tuple[str, str]],
    request: Request,
    as_of: date,
) -> list[Session]:
    """Steps 1 and 2: the graded sessions of the scenario that pass every filter."""
    _check_inputs(sessions, members)
    if request.start is not None:
        _check_aware(request.start, "request start")
    if request.end is not None:
        _check_aware(request.end, "request end")

    emails = user_emails(sessions, members)
    cutoff = end_of_day(as_of)

    wanted_ids = _request_items(request.user_ids)
    wanted_emails = {normalize_email(e) for e in _request_items(request.user_emails)}
    wanted_groups = _request_items(request.group_ids)
    groups_of_user: dict[str, set[str]] = {}
    for group_id, user_id in memberships:
        groups_of_user.setdefault(user_id, set()).add(group_id)

    kept: list[Session] = []
    for session in sessions:
        # Step 1: graded sessions of this scenario, up to the end of the as-of day.
        if session.scenario_id != scenario_id:
            continue
        if not session.is_valid_attempt:
            continue
        if session.created_at > cutoff:
            continue
        # Step 2: filters; user_ids and user_emails are unioned, everything else ANDed.
        user = session.user_id
        email = emails.get(user)
        if wanted_ids or wanted_emails:
            in_ids = user in wanted_ids
            in_emails = email is not None and email in wanted_emails
            if not (in_ids or in_emails):
                continue
        if wanted_groups and not (groups_of_user.get(user, set()) & wanted_groups):
            continue
        if request.start is not None and session.created_at < request.start:
            continue
        if request.end is not None and session.created_at > request.end:
            continue
        if request.exclude_system_users and is_system_email(email):
            continue
        kept.append(session)
    return kept


def _participant(user_id: str, sessions: list[Session]) -> dict[str, object]:
    """Step 3 for one user with at least one session left."""
    earliest = min(sessions, key=lambda s: (s.created_at, _id_key(s.id)))
    scores = [_score(s) for s in sessions]
    first_score = _score(earliest)
    best_score = max(scores)
    total_duration = sum(
        (s.duration_seconds for s in sessions if s.duration_seconds is not None),
        start=Decimal(0),
    )
    return {
        "user_id": user_id,
        "session_count": len(sessions),
        "first_score": first_score,
        "best_score": best_score,
        "lift": best_score - first_score,
        "total_duration_seconds": total_duration,
    }


def _score(session: Session) -> Decimal:
    assert session.score is not None  # graded sessions always have one (_check_inputs)
    return session.score


def _participants_of(kept: list[Session]) -> list[dict[str, object]]:
    by_user: dict[str, list[Session]] = {}
    for session in kept:
        by_user.setdefault(session.user_id, []).append(session)
    return [_participant(user, by_user[user]) for user in sorted(by_user, key=_id_key)]


def participants(
    scenario_id: str,
    sessions: Sequence[Session],
    members: Sequence[Member],
    memberships: Iterable[tuple[str, str]],
    request: Request,
    as_of: date,
) -> list[dict[str, object]]:
    """Per participant (step 3), sorted by user id in byte order.

    Keys: user_id, session_count, first_score, best_score, lift, total_duration_seconds
    (sum of non-null durations; 0 when none).
    """
    kept = _filtered_sessions(scenario_id, sessions, members, memberships, request, as_of)
    return _participants_of(kept)


def summary(
    scenario_id: str,
    sessions: Sequence[Session],
    members: Sequence[Member],
    memberships: Iterable[tuple[str, str]],
    request: Request,
    as_of: date,
) -> dict[str, object]:
    """The response body of section 2, fields in the contract's order.

    ``sessions`` is every accepted, de-duplicated session of the exports (all scenarios,
    all dates: emails are taken from all of them). 1-decimal figures are ``Decimal``,
    counts and minutes are ``int``.
    """
    kept = _filtered_sessions(scenario_id, sessions, members, memberships, request, as_of)
    people = _participants_of(kept)
    participant_count = len(people)

    durations = [s.duration_seconds for s in kept if s.duration_seconds is not None]
    total_duration = sum(durations, start=Decimal(0))
    average_duration = (
        round1(_divide(total_duration, len(durations))) if durations else round1(Decimal(0))
    )

    if participant_count:
        best_scores = [_as_decimal(p["best_score"]) for p in people]
        lifts = [_as_decimal(p["lift"]) for p in people]
        average_best = round1(_divide(sum(best_scores, start=Decimal(0)), participant_count))
        average_lift = round1(_divide(sum(lifts, start=Decimal(0)), participant_count))
    else:
        best_scores = []
        average_best = round1(Decimal(0))
        average_lift = round1(Decimal(0))

    distribution: list[dict[str, object]] = []
    for name in RANKS:
        count = sum(1 for best in best_scores if rank(best) == name)
        percentage = (
            round1(_divide(Decimal(count) * 100, participant_count))
            if participant_count
            else round1(Decimal(0))
        )
        distribution.append({"rank": name, "count": count, "percentage": percentage})

    return {
        "participant_count": participant_count,
        "total_sessions": len(kept),
        "average_best_score": average_best,
        "average_best_rank": rank(average_best),
        "average_lift_percentage": average_lift,
        "total_practice_minutes": round0(_divide(total_duration, 60)),
        "average_session_duration_seconds": average_duration,
        "score_distribution": distribution,
    }


# What the participants endpoint's `sorting` names -> the participant's key it orders by.
SORT_KEYS = {
    "best_score": "best_score",
    "first_score": "first_score",
    "lift_percentage": "lift",
    "total_duration_seconds": "total_duration_seconds",
    "session_count": "session_count",
}


def participants_page(
    scenario_id: str,
    sessions: Sequence[Session],
    members: Sequence[Member],
    memberships: Iterable[tuple[str, str]],
    request: Request,
    as_of: date,
    *,
    sorting: str = "-best_score",
    page: int = 1,
    page_size: int = 20,
) -> dict[str, object]:
    """The participants endpoint's body: the participants (step 3) sorted by the exact
    value `sorting` names (``-`` first: descending), ties by user id ascending in byte
    order either way; the page; each entry with the user's email and names, the scores,
    lift and duration sum rounded to 1 decimal, and ranks of the exact scores."""
    people = participants(scenario_id, sessions, members, memberships, request, as_of)
    key = SORT_KEYS[sorting.lstrip("-")]
    descending = sorting.startswith("-")
    # Sort by user id first, then (stable) by the value: ties stay in user id order.
    ordered = sorted(people, key=lambda p: _id_key(str(p["user_id"])))
    ordered.sort(key=lambda p: p[key], reverse=descending)  # type: ignore[arg-type, return-value]
    emails = user_emails(sessions, members)
    names = user_names(sessions, members)
    start = (page - 1) * page_size
    entries = []
    for p in ordered[start : start + page_size]:
        user_id = str(p["user_id"])
        first, best = _as_decimal(p["first_score"]), _as_decimal(p["best_score"])
        first_name, last_name = names.get(user_id, (None, None))
        entries.append(
            {
                "user": {
                    "id": user_id,
                    "email": emails.get(user_id),
                    "first_name": first_name,
                    "last_name": last_name,
                },
                "session_count": p["session_count"],
                "first_score": round1(first),
                "first_rank": rank(first),
                "best_score": round1(best),
                "best_rank": rank(best),
                "lift_percentage": round1(_as_decimal(p["lift"])),
                "total_duration_seconds": round1(_as_decimal(p["total_duration_seconds"])),
            }
        )
    return {
        "data": entries,
        "pagination": {
            "page": page,
            "page_size": page_size,
            "total_count": len(people),
            "total_pages": -(-len(people) // page_size),
        },
    }


def _as_decimal(value: object) -> Decimal:
    assert isinstance(value, Decimal)
    return value


# --- loading the reference example ---------------------------------------------------------


def _text_id(value: object) -> str:
    """Ids may be JSON strings or integers; they are kept as text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"not an id: {value!r}")
    return str(value)


def _decimal_or_none(value: object, places: int) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError(f"not a number: {value!r}")
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _parse_created_at(text: str) -> datetime:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def load_sessions_jsonl(path: Path) -> list[Session]:
    """Read nested API-shaped session records (one per line); every record must be valid."""
    sessions: list[Session] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line, parse_float=Decimal)
            user = record["user"]
            is_valid_attempt = record["is_valid_attempt"]
            if not isinstance(is_valid_attempt, bool):
                raise ValueError(f"not a boolean: {is_valid_attempt!r}")
            sessions.append(
                Session(
                    id=_text_id(record["id"]),
                    user_id=_text_id(user["id"]),
                    scenario_id=_text_id(record["scenario"]["id"]),
                    created_at=_parse_created_at(record["created_at"]),
                    is_valid_attempt=is_valid_attempt,
                    score=_decimal_or_none(record.get("score"), 4),
                    duration_seconds=_decimal_or_none(record.get("duration_seconds"), 6),
                    email=user.get("email"),
                )
            )
    return sessions


def load_reference_example() -> list[Session]:
    """The API reference example (128 sessions, 45 users, one scenario), as sessions."""
    return load_sessions_jsonl(REFERENCE_EXAMPLE_DIR / "exports" / "sessions" / "export.jsonl")
