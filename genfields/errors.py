"""Errors that the command line reports as one clear line (no traceback)."""


class GenfieldsError(Exception):
    """Base class of the errors a user can cause and fix (bad input, missing file, ...)."""


class ConfigError(GenfieldsError, ValueError):
    """An invalid configuration, architecture name or argument."""


class CheckpointError(GenfieldsError):
    """A checkpoint that is missing, corrupt, of an unknown format, or does not fit the network."""


class UnsafePickleError(CheckpointError):
    """A pickle that references code outside the allow-list; refused before anything runs."""


def exit_with_error(err: BaseException) -> "NoReturn":  # noqa: F821
    """Report a user error as one line on stderr and exit with status 2 (every command does this)."""
    import sys

    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2)


def dataclass_from_dict(cls, data: dict, what: str, strict: bool = True):
    """Build dataclass `cls` from a dict (e.g. a saved config.json).

    Strict: unknown keys are a `ConfigError` naming them. Lenient: they are dropped (for reading
    run folders written by older versions).
    """
    import dataclasses

    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown and strict:
        raise ConfigError(f"unknown {what} keys: {', '.join(unknown)}")
    return cls(**{k: v for k, v in data.items() if k in known})
