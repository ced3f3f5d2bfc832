"""One exception tree. Every error names what went wrong and how to fix it (`fix`)."""

from __future__ import annotations


class LabelmillError(Exception):
    """Base of every error labelmill raises on purpose.

    `fix` is one short sentence a user can act on; the CLI prints `message` and `fix` on one line.
    """

    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        return f"{text}. Fix: {self.fix}" if self.fix else text


class ConfigError(LabelmillError):
    """The config file is missing, unreadable or invalid."""

    exit_code = 2


class InputDataError(LabelmillError):
    """The input rows cannot be read or lack what the config needs."""

    exit_code = 3


class ModelNotFoundError(LabelmillError):
    """The model file or package is not there."""

    exit_code = 4


class MissingDependencyError(LabelmillError):
    """An optional extra is not installed."""

    exit_code = 4

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed",
            fix=f"pip install 'labelmill[{extra}]' (or run scripts/install.sh)",
        )
        self.package = package
        self.extra = extra


class BackendError(LabelmillError):
    """A model backend failed in a way that retrying the same request will not fix."""

    exit_code = 5


class StoreError(LabelmillError):
    """The project store cannot be opened or is from an incompatible version."""

    exit_code = 6


class UnknownComponentError(LabelmillError):
    """A registry was asked for a name it does not know."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: list[str]):
        import difflib

        close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
        super().__init__(
            f"unknown {kind} {name!r}",
            fix=(f"did you mean {close[0]!r}? " if close else "") + f"use one of: {', '.join(sorted(known))}",
        )
        self.kind = kind
        self.name = name
        self.known = known


# Kinds of failed model requests (see backends/remote.py). A row that failed with a transient kind is
# saved with it, and a rerun sends it again; a row with a stop kind was never sent and is not saved.
TRANSIENT_ERRORS = frozenset({"timeout", "rate_limited", "server_error", "connection_error", "malformed_response"})
STOP_ERRORS = frozenset({"budget_exhausted", "server_unavailable"})


class RunStopped(LabelmillError):
    """The run stopped early and cleanly (cost cap reached, model server down); every label so far is saved.

    `result` is the RunResult of what was labeled (the output file is written).
    """

    exit_code = 7

    def __init__(self, kind: str, message: str, *, fix: str | None = None, result=None):
        super().__init__(message, fix=fix)
        self.kind = kind
        self.result = result
