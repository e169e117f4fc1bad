"""Commands the tool prints for a user to copy, with the options in force repeated.

A printed `backfill` that drops the `--job` the user gave rebuilds with the default
filters and engine, and one that drops the store does not run at all. So every printed
command repeats the options given on the command line that choose what is built and
where (`REPEATED`), quoted for a POSIX shell; one given in the environment is in force
when the printed command runs in the same environment, and stays out. A command that
needs the exports, printed by one that was not given them (`snapshots verify
--snapshots S`), names them `--exports EXPORTS` for the user to fill in.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

import click
from click.core import ParameterSource

# Parameter names (as the commands declare them) a printed command repeats, in order.
REPEATED = ("job", "exports", "snapshots", "engine_name", "spark_master", "max_reject_ratio",
            "skip_checks")  # fmt: skip


def _given(ctx: click.Context | None) -> dict[str, list[str]]:
    """The `REPEATED` options of this command and the groups above it that were given on
    the command line, by parameter name, as arguments (`["--job", "custom.toml"]`)."""
    ctx = ctx or click.get_current_context()
    found: dict[str, list[str]] = {}
    contexts = []
    while ctx is not None:
        contexts.append(ctx)
        ctx = ctx.parent
    for context in reversed(contexts):  # a subcommand's value wins over its group's
        params = {p.name: p for p in context.command.params}
        for name in REPEATED:
            param = params.get(name)
            if param is None or context.get_parameter_source(name) != ParameterSource.COMMANDLINE:
                continue
            value = context.params.get(name)
            if value is None or value == ():
                continue
            flag = max(param.opts, key=len)  # the long form
            values = value if isinstance(value, tuple | list) else (value,)
            found[name] = [arg for v in values for arg in (flag, str(v))]
    return found


def given_options(ctx: click.Context | None = None) -> list[str]:
    """The `REPEATED` options given on the command line, as arguments, in `REPEATED`'s
    order."""
    found = _given(ctx)
    return [arg for name in REPEATED for arg in found.get(name, [])]


def _accepted(words: list[str], ctx: click.Context) -> set[str] | None:
    """The parameter names the command `words` names (and its groups) takes; None when
    the words name no command of this tool."""
    command: click.Command = ctx.find_root().command
    names: set[str] = set()
    for word in words:
        if not isinstance(command, click.Group) or word not in command.commands:
            break
        command = command.commands[word]
        names |= {p.name for p in command.params if p.name}
    return names or None


def command(words: Iterable[str], ctx: click.Context | None = None, *, exports: bool = False,
            ) -> str:  # fmt: skip
    """`scenario-analytics WORDS…` with the options in force that the command takes (and
    that the words do not give already); `exports`: the command needs the exports (a
    placeholder when neither they nor a job file were given)."""
    ctx = ctx or click.get_current_context()
    words = list(words)
    accepted = _accepted(words, ctx)
    found = _given(ctx)
    repeated = [
        arg
        for name in REPEATED
        if name in found and (accepted is None or name in accepted)
        and found[name][0] not in words
        for arg in found[name]
    ]  # fmt: skip
    if exports and not {"--job", "--exports"} & {*repeated, *words}:
        repeated = ["--exports", "EXPORTS", *repeated]
    return shlex.join(["scenario-analytics", *words, *repeated])


_QUOTED = re.compile(r"`scenario-analytics ([^`]*)`")
# Commands that need the exports (a store command printing one was not given them).
_NEED_EXPORTS = ("run", "backfill", "validate")


def with_options(text: str, ctx: click.Context | None = None) -> str:
    """`text` with every command quoted in it (`scenario-analytics …`, in backticks, as the
    store's messages name them) given the options in force."""

    def repeat(found: re.Match[str]) -> str:
        try:
            words = shlex.split(found.group(1))
        except ValueError:
            return found.group(0)
        if "--help" in words or any(w.isupper() and w != "EXPORTS" for w in words):
            return found.group(0)  # help, or a pattern with placeholders (FILE, NAME)
        needs = bool(words) and words[0] in _NEED_EXPORTS
        return f"`{command(words, ctx, exports=needs)}`"

    return _QUOTED.sub(repeat, text)
