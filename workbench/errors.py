"""Application errors and the one place that turns any error into a documented exit code."""

from __future__ import annotations

import enum

from workbench import broker


class ExitCode(enum.IntEnum):
    """Exit codes of every `workbench` command (documented in the README)."""

    OK = 0
    ERROR = 1  # unexpected failure (a bug: please report it)
    USAGE = 2  # bad flag, position, filter expression
    CONFIG = 3  # bad or missing profile file, unknown profile, missing ${ENV}
    UNREACHABLE = 4  # broker did not answer
    NOT_FOUND = 5  # topic, partition, group does not exist
    DENIED = 6  # access denied, a read-only profile asked to change something, or a change refused for safety
    PUBLISH_FAILED = 7  # at least one event was not confirmed
    BAD_INPUT = 8  # malformed input file (the line is named)
    TIMEOUT = 9
    UNSUPPORTED = 10  # the broker or adapter cannot do this
    INTERRUPTED = 130  # Ctrl-C


class WorkbenchError(Exception):
    """An error the user can act on: the message says what is wrong, the hint what to do."""

    exit_code = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(WorkbenchError):
    exit_code = ExitCode.USAGE


class ConfigError(WorkbenchError):
    exit_code = ExitCode.CONFIG


class ReadOnlyError(WorkbenchError):
    exit_code = ExitCode.DENIED


class ResetRefused(WorkbenchError):
    """A change refused for safety, e.g. resetting the offsets of a group that may have live members."""

    exit_code = ExitCode.DENIED


class CompensationRefused(WorkbenchError):
    """A saga compensation refused for safety: past the pivot, still running, changed since the plan."""

    exit_code = ExitCode.DENIED


class BadInput(WorkbenchError):
    exit_code = ExitCode.BAD_INPUT


class PublishFailed(WorkbenchError):
    exit_code = ExitCode.PUBLISH_FAILED


_BROKER_CODES: dict[type[broker.BrokerError], ExitCode] = {
    broker.Unreachable: ExitCode.UNREACHABLE,
    broker.NotFound: ExitCode.NOT_FOUND,
    broker.AccessDenied: ExitCode.DENIED,
    broker.Timeout: ExitCode.TIMEOUT,
    broker.Unsupported: ExitCode.UNSUPPORTED,
    broker.InvalidRequest: ExitCode.USAGE,
    broker.Unroutable: ExitCode.PUBLISH_FAILED,
}


def exit_code_for(exc: BaseException) -> ExitCode:
    if isinstance(exc, WorkbenchError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    for kind, code in _BROKER_CODES.items():
        if isinstance(exc, kind):
            return code
    return ExitCode.ERROR
