"""Application errors and the one place that turns any error into a documented exit code.

Two trees of errors the user can act on, each with a message (what is wrong) and an optional
``hint`` (what to do); :func:`exit_code_for` maps any exception to an :class:`ExitCode`, and the
CLI (``workbench.cli.base.fail``, used by every verb and by ``run``) prints ``error: ...`` and
``hint: ...`` on stderr and exits with that code. The TUI shows the same message and hint.

``WorkbenchError`` (this module; raised by the workbench itself), its ``exit_code`` is the code:

- ``WorkbenchError``         1  ERROR        an error the user can act on, of no kind below
- ``UsageError``             2  USAGE        a bad flag, position, filter expression or argument
- ``ConfigError``            3  CONFIG       a bad or missing profile file, unknown profile, missing ``${ENV}``,
                                             a bad saga definition or correlation rule
- ``ReadOnlyError``          6  DENIED       a read-only profile asked to change something
- ``ResetRefused``           6  DENIED       an offsets reset refused for safety (a group that may have live members)
- ``CompensationRefused``    6  DENIED       a saga compensation refused for safety (past the pivot, still
                                             running, changed since the plan)
- ``PublishFailed``          7  PUBLISH_FAILED  at least one event was not confirmed
- ``BadInput``               8  BAD_INPUT    a malformed input file or record (the line is named)
- ``LagAlarm``              11  LAG_ALARM    `lag --watch --fail-on VERDICTS`: a group reached one of them
- elsewhere: ``workbench.sagas.compensation.SagaNotFound`` and ``workbench.triage.trace.TraceNotFound``
  (5, NOT_FOUND: no saga instance / no event carries the correlation id).

``BrokerError`` (:mod:`workbench.broker`, the adapter contract; raised by adapters), by ``_BROKER_CODES``:

- ``Unreachable``     4  UNREACHABLE     the broker did not answer, or no trusted connection could be made
                                         (TLS: a certificate the profile's CA does not vouch for, or one
                                         not valid for the host name: the message says which)
- ``NotFound``        5  NOT_FOUND       the topic, partition or group does not exist
- ``AccessDenied``    6  DENIED          the broker refused the credentials ("authentication failed"), or
                                         its ACLs refused the operation ("not authorized to Write to topic
                                         'orders'")
- ``Timeout``         9  TIMEOUT         the broker was too slow
- ``Unsupported``     10 UNSUPPORTED     the broker or adapter cannot do this
- ``InvalidRequest``  2  USAGE           options or a request the adapter cannot accept
- ``Unroutable``      7  PUBLISH_FAILED  a published event no queue would receive
- ``BrokerError`` of no kind above: 1 (ERROR).

Anything else: ``KeyboardInterrupt`` is 130 (INTERRUPTED); any other exception is 1 (ERROR), and the
CLI reports it as a bug ("please report it"). Value errors of the pure modules (``FilterError``,
``InputError``, ``CodecError``, ``TemplateError``) are not in either tree: callers turn them into
one of the errors above with the context (``--filter``: UsageError; an input line: BadInput; a saga
definition: ConfigError; a template that cannot be filled at compensation time: CompensationRefused).
"""

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
    LAG_ALARM = 11  # lag --watch --fail-on: a group reached one of the named verdicts
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


class LagAlarm(WorkbenchError):
    """A consumer group reached a verdict named by ``lag --watch --fail-on``."""

    exit_code = ExitCode.LAG_ALARM


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
