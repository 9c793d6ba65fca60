"""`workbench` alone on a terminal: straight to the full-screen app, without typer or the verbs.

Importing typer and every verb module costs about a third of a second before the first frame. When
the command line holds nothing but the connection options (``--profile``/``-p``, ``--broker``/``-b``)
and both standard input and output are terminals, the app is opened from here. Anything else (a
verb, ``--help``, a mistake, a warning to print first) goes the ordinary way through typer, which
says what is wrong and exits with the documented code. Imports neither typer nor Textual itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from workbench import config

#: The options that only choose where to connect, by their names on the command line.
CONNECTION_OPTIONS = {"--profile": "profile", "-p": "profile", "--broker": "broker", "-b": "broker"}
PROFILE_ENV = "WORKBENCH_PROFILE"


def connection_options(argv: Sequence[str]) -> dict[str, str] | None:
    """``{"profile": ..., "broker": ...}`` (those given) of a command line holding nothing else, else
    None: anything unusual (another option, a verb, an option twice, a value like an option)."""
    chosen: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        name, equals, value = arg.partition("=")
        if not (equals and name.startswith("--")):
            name, value = arg, next(args, "")
        key = CONNECTION_OPTIONS.get(name)
        if key is None or key in chosen or not value or value.startswith("-"):
            return None
        chosen[key] = value
    return chosen


def tui_target(argv: Sequence[str], environ: Mapping[str, str]) -> config.Target | None:
    """Where `workbench` with these arguments opens the app, when it can go the quick way; None
    sends it the ordinary way (the same resolution as the root command's, see cli.base.Globals)."""
    options = connection_options(argv)
    if options is None:
        return None
    profile, broker = options.get("profile"), options.get("broker")
    if profile and broker:
        return None  # exclusive: typer says so
    try:
        if broker:
            chosen = config.url_profile(broker)
        else:
            chosen = config.load_config().profile(profile or environ.get(PROFILE_ENV) or None)
        target = config.without_creating(config.resolve(chosen))
    except Exception:  # noqa: BLE001 - reported the ordinary way, with its exit code
        return None
    return None if target.warnings else target  # warnings are printed the ordinary way


def on_terminal() -> bool:
    """The app opens only when both ends are terminals (else `workbench` lists the topics)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def open_tui(target: config.Target) -> None:
    """As the root command does: the app in a guarded child, which this process waits for."""
    from workbench.tui.guard import run_guarded

    run_guarded()  # the app runs in a child; a crash of it still gives the terminal back
    from workbench.tui.app import run_app

    run_app(target)
