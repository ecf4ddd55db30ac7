"""One exception tree for library code; the CLI and the API translate it at the edges.

Every error carries the process exit code the CLI uses for it, so the mapping lives
in one place:

    0 ok, 1 general error, 2 invalid parameters, 3 timeout,
    4 missing dependency, 5 configuration error.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    INVALID_PARAMETERS = 2
    TIMEOUT = 3
    MISSING_DEPENDENCY = 4
    CONFIGURATION = 5


class ExaPGError(Exception):
    """Base of every error ExaPG raises on purpose.

    The message is one line that says what failed and what to do about it.
    """

    exit_code: ExitCode = ExitCode.ERROR


class InvalidParameterError(ExaPGError):
    exit_code = ExitCode.INVALID_PARAMETERS


class OperationTimeoutError(ExaPGError):
    exit_code = ExitCode.TIMEOUT


class MissingDependencyError(ExaPGError):
    exit_code = ExitCode.MISSING_DEPENDENCY


class ConfigurationError(ExaPGError):
    """Settings, files or the environment are wrong; the message lists every problem."""

    exit_code = ExitCode.CONFIGURATION

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class CommandError(ExaPGError):
    """An external program (initdb, pg_ctl, pg_basebackup, ...) failed."""

    def __init__(self, message: str, output: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.output = output
        self.returncode = returncode


def first_line(exc: BaseException, *, last: bool = False) -> str:
    """The line of an exception's message worth showing (libpq puts the reason last);
    the exception's type when the message is empty."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return lines[-1] if last else lines[0]
