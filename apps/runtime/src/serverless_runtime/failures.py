"""Every `kind` the runtime writes to `<out>:error`: its values are a contract with the readers."""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    """One fault each; `meaning` is the README's "Failure kinds" table (tested to agree)."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> FailureKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    INVALID_INPUT = "invalid-input", "the input is not a JSON object, too deep or too big"
    HANDLER_ERROR = "handler-error", "the handler raised (SystemExit and KeyboardInterrupt too)"
    TIMEOUT = "timeout", "a call, an import or a replay ran past its limit"
    INVALID_OUTPUT = "invalid-output", "the result cannot be written, or context.env was replaced"
    INVALID_STATE = "invalid-state", "the state cannot be read from Redis, or cannot be written"
    REPLAY_ERROR = "replay-error", "a committed input could not be applied again"
    POISON_INPUT = "poison-input", "an input or stream entry ended the process too many times"
    REDIS_ERROR = "redis-error", "Redis answered with an error, or the commit was refused"
    REDIS_RESET = "redis-reset", "Redis lost commits: this replica's state was written back"
    FUNCTION_MISSING = "function-missing", "the function file or zip does not exist"
    SYNTAX_ERROR = "syntax-error", "the function (or a module it imports) is not valid Python"
    IMPORT_ERROR = "import-error", "running the module raised"
    DEPENDENCY_MISSING = "dependency-missing", "the module imports a module that is not installed"
    MODULE_NOT_FOUND = "module-not-found", "FUNCTION_HANDLER's module is not in the package"
    HANDLER_NOT_FOUND = "handler-not-found", "the module has no attribute of the handler's name"
    HANDLER_NOT_CALLABLE = "handler-not-callable", "the handler attribute cannot be called"
    UNSAFE_PACKAGE = "unsafe-package", "the zip breaks a safety rule (paths, links, size, names)"
    BAD_PACKAGE = "bad-package", "the file is not a readable zip archive"
    WORKDIR_UNAVAILABLE = "workdir-unavailable", "no directory can be made to extract the zip in"
    REQUIREMENTS_FAILED = "requirements-failed", "pip could not install NEW_REQUERIMENTS"
