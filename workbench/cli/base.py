"""What every verb shares: the root typer app, global options, errors to exit codes, progress.

stdout carries data only; diagnostics, progress and errors go to stderr. Every error becomes a
documented exit code through :func:`workbench.errors.exit_code_for`. Nothing here imports Textual
or a broker client library: adapters are loaded by name, only when a verb connects.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from workbench import config
from workbench.broker import BrokerError
from workbench.cli import output
from workbench.errors import ExitCode, UsageError, WorkbenchError, exit_code_for

T = TypeVar("T")
DISTRIBUTION = "event-workbench"


def summary_line(help_text: str | None) -> str:
    """A command's summary in the command list: its help's whole first line. Click would cut it at
    the first period followed by a space, e.g. after "e.g."."""
    return inspect.cleandoc(help_text or "").partition("\n")[0].strip()


def examples_kept(help_text: str | None) -> str | None:
    """Help text whose indented paragraphs (e.g. one example per line) click prints as written
    instead of reflowing them into one paragraph (click's ``\\b`` marker)."""
    if not help_text:
        return help_text
    paragraphs = inspect.cleandoc(help_text).split("\n\n")
    kept = [
        f"\b\n{p}" if any(line.startswith("  ") for line in p.splitlines()[1:]) and not p.startswith("\b") else p
        for p in paragraphs
    ]
    return "\n\n".join(kept)


def _lay_out_help(command: Any) -> None:  # a click Command (typer's own copy of click)
    """Summaries that stand alone and examples one per line, for a command and its subcommands."""
    if command.help and not command.short_help:
        command.short_help = summary_line(command.help)
    command.help = examples_kept(command.help)
    for sub in getattr(command, "commands", {}).values():
        _lay_out_help(sub)


class WorkbenchGroup(TyperGroup):
    """The root command: every verb's help laid out the same way, whichever module defines it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for command in self.commands.values():
            _lay_out_help(command)


app = typer.Typer(
    name="workbench",
    cls=WorkbenchGroup,
    help="A terminal workbench for event-driven systems: browse topics, tail events, inspect consumer "
    "lag, publish test events. With no command it opens the workbench on the connected broker.",
    no_args_is_help=False,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,  # unexpected errors are reported by fail(), never with locals
    context_settings={"help_option_names": ["-h", "--help"]},
)


class TableOrJson(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


@dataclass
class Globals:
    profile: str | None
    broker: str | None
    output: TableOrJson

    profile_from_env: bool = False

    def target(self) -> config.Target:
        if self.profile and self.broker and not self.profile_from_env:
            raise UsageError("--profile and --broker are exclusive", hint="choose one way to connect")
        chosen = config.url_profile(self.broker) if self.broker else config.load_config().profile(self.profile)
        return config.resolve(chosen)


def fail(exc: BaseException) -> NoReturn:
    """Print an error the user can act on and exit with its code."""
    code = exit_code_for(exc)
    if code is ExitCode.INTERRUPTED:
        output.stderr.print("interrupted")
    elif code is ExitCode.ERROR and not isinstance(exc, WorkbenchError | BrokerError):
        output.stderr.print(output.safe(f"error: unexpected {type(exc).__name__}: {exc}", "red"))
        output.stderr.print("this is a bug in Event Workbench; please report it with the command you ran")
    else:
        for n, line in enumerate(str(exc).splitlines() or [""]):  # e.g. a filter and its caret line
            output.stderr.print(output.safe(f"error: {line}" if n == 0 else f"  {line}", "red"))
        hint = getattr(exc, "hint", None)
        if hint:
            output.stderr.print(output.safe(f"hint: {hint}", "yellow"))
    raise typer.Exit(int(code))


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async verb; every error becomes a message on stderr and an exit code."""
    try:
        return asyncio.run(body())
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except (WorkbenchError, BrokerError, KeyboardInterrupt) as exc:
        fail(exc)
    except Exception as exc:  # noqa: BLE001 - a bug: say so, without a traceback full of locals
        fail(exc)


def globals_of(ctx: typer.Context) -> Globals:
    return ctx.find_root().obj


def fmt_of(ctx: typer.Context, local: TableOrJson | None) -> output.Format:
    return (local or globals_of(ctx).output).value


def target_of(ctx: typer.Context, *, creates: bool = False) -> config.Target:
    """The target of the verb; its warnings (TLS verification off, a readable file holding a password,
    ignored options) go to stderr every time.

    Only a verb that ``creates`` something (a topic, the demo) may create a missing local event log
    file; for any other verb a missing file is "no such file" (exit 5), e.g. a mistyped path.
    """
    try:
        target = globals_of(ctx).target()
    except (WorkbenchError, BrokerError) as exc:  # e.g. a malformed --broker URL
        fail(exc)
    if not creates:
        target = config.without_creating(target)
    for warning in target.warnings:
        output.stderr.print(output.safe(f"warning: {warning}", "yellow"))
    return target


OutputOption = Annotated[
    TableOrJson | None, typer.Option("--output", "-o", help="table (for people) or json/jsonl (for scripts).")
]


def version_text() -> str:
    """The installed distribution's version (from its metadata, so it cannot drift from pyproject)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"workbench {version(DISTRIBUTION)}"
    except PackageNotFoundError:
        return "workbench (version unknown: the event-workbench distribution is not installed)"


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(version_text() + "\n")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", envvar="WORKBENCH_PROFILE", help="Profile name from workbench.toml."),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option("--broker", "-b", help="Connect without a profile: kafka://HOST:PORT, amqp://..., local:PATH."),
    ] = None,
    output_format: Annotated[
        TableOrJson, typer.Option("--output", "-o", help="table, json or jsonl.")
    ] = TableOrJson.table,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    source = ctx.get_parameter_source("profile")
    from_env = source is not None and source.name == "ENVIRONMENT"  # WORKBENCH_PROFILE yields to --broker
    ctx.obj = Globals(profile=profile, broker=broker, output=output_format, profile_from_env=from_env)
    if ctx.invoked_subcommand is None:
        overview(ctx)


def overview(ctx: typer.Context) -> None:
    """`workbench` alone: the full-screen workbench on the profile (Textual is imported only here).

    When stdin or stdout is not a terminal (a script, a pipe) it prints where it is and the topics instead.
    """
    target = target_of(ctx)
    if sys.stdin.isatty() and sys.stdout.isatty():
        from workbench.tui.guard import run_guarded

        run_guarded()  # the app runs in a child; a crash of it still gives the terminal back
        from workbench.tui.app import run_app

        run_app(target)
        return
    from workbench import service

    async def body() -> None:
        async with service.connect(target) as conn:
            output.stderr.print(output.safe(f"profile {target.profile.name}: {target.profile.shown_broker()}", "bold"))
            output.render_topics(await conn.list_topics(), "table")

    run(body)
    output.stderr.print("next: workbench tail TOPIC --from -10 | workbench lag | workbench publish TOPIC --value TEXT")


def compile_filter(text: str | None, named: Mapping[str, str] | None = None) -> Callable[[Any], bool] | None:
    """The compiled ``--filter``; ``@name`` stands for a ``named`` filter (the profile file's [filters])."""
    if text is None:
        return None
    from workbench.events.filters import FilterError, compile_filter, expand_named

    try:
        compiled = compile_filter(expand_named(text, named or {}))
    except FilterError as exc:
        raise UsageError(
            f"--filter: {exc}", hint="see `workbench tail --help` and the README's filter section"
        ) from None
    compiled.on_mismatch = lambda why: output.stderr.print(output.safe(f"warning: --filter: {why}", "yellow"))
    return compiled.matches


REDACT_HELP = (
    "Apply the profile file's [mask] rules to this machine output too (table output always is); "
    "each event then carries the workbench-redacted header, so it is never published back."
)


def wants_originals(target: config.Target, *, machine: bool, redact: bool, what: str) -> bool:
    """Whether a read may return original values: machine output (JSONL, raw, a capture file)
    without ``--redact``. Table output is always redacted. Refused where the profile requires
    redaction (``mask_required``); ``--redact`` without [mask] rules is a usage error."""
    from workbench.events.redaction import required_refusal

    if redact and config.mask_rules(target.profile) is None:
        raise UsageError(
            "--redact: the profile file has no [mask] rules to apply",
            hint="add a [mask] table to workbench.toml (README: Redaction)",
        )
    if not machine or redact:
        return False
    if target.profile.mask_required:
        raise required_refusal(target.profile.name, what, target.profile.source)
    return True


class scan_progress:
    """Progress on stderr while long work runs, only when stderr is a terminal.

    The callback takes an increment (``counted`` None) or a report whose running total
    ``counted(report)`` gives.
    """

    def __init__(self, total: int | None, *, counted: Callable[[Any], int] | None = None, minimum: int = 0) -> None:
        self.progress = None
        self.counted = counted
        if sys.stderr.isatty() and (total is None or total >= minimum):
            from rich.progress import Progress

            self.progress = Progress(console=output.stderr, transient=True)
            self.task = self.progress.add_task("working", total=total)

    def __enter__(self) -> Callable[[Any], None] | None:
        if self.progress is None:
            return None
        self.progress.start()
        if self.counted is None:
            return lambda n: self.progress.advance(self.task, n)  # type: ignore[union-attr]
        return lambda report: self.progress.update(self.task, completed=self.counted(report))  # type: ignore[union-attr,misc]

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
