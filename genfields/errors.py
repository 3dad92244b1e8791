"""Errors that the command line reports as one clear line (no traceback), and the checks that raise them.

The second half is the command line's one validation layer: numeric ranges, seeds, output
paths, checked at parse time where they can be (Typer callbacks), so that a bad number or an
unwritable output is one line naming the option before any work starts:

    batch: int = typer.Option(32, callback=AT_LEAST_1, help=...)
    share: float = typer.Option(0.9, callback=ranged(0, 1, min_open=True), help=...)
    outdir: Path = typer.Option(..., callback=output_folder, help=...)
    out: Path = typer.Option(..., callback=output_file(".png", ".jpg"), help=...)

Sizes and counts have upper bounds as well (BATCH, IMAGES, STEPS, KIMG, WIDTH, `threads_option`),
so that a typo such as 1e30 is refused before anything is allocated or created.

The callbacks raise `ConfigError` (not Click's own errors), so every refusal reads the same:
`error: --batch must be >= 1, got 0`. `genfields.cli` turns whatever else a command raises into
one line and exit status 2.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional


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


# --- command-line checks ---------------------------------------------------------------------------
SEED_MAX = 2 ** 32 - 1  # seeds feed np.random.RandomState, as NVIDIA's generate.py does


# --- numbers -----------------------------------------------------------------------------------
def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _range_text(min: Optional[float], max: Optional[float], min_open: bool, max_open: bool) -> str:
    if min is not None and max is not None:
        return f"in {'(' if min_open else '['}{_num(min)}, {_num(max)}{')' if max_open else ']'}"
    if min is not None:
        return f"{'>' if min_open else '>='} {_num(min)}"
    if max is not None:
        return f"{'<' if max_open else '<='} {_num(max)}"
    return "a finite number"


def check_number(name: str, value: float, min: Optional[float] = None, max: Optional[float] = None,
                 min_open: bool = False, max_open: bool = False) -> float:
    """`value` if it is finite and within the range, else a ConfigError naming `name` and the range."""
    text = _range_text(min, max, min_open, max_open)
    bad = not math.isfinite(value)
    bad = bad or (min is not None and (value <= min if min_open else value < min))
    bad = bad or (max is not None and (value >= max if max_open else value > max))
    if bad:
        raise ConfigError(f"{name} must be {text}, got {value:g}" if isinstance(value, float)
                          else f"{name} must be {text}, got {value}")
    return value


def ranged(min: Optional[float] = None, max: Optional[float] = None, *, min_open: bool = False,
           max_open: bool = False) -> Callable:
    """A Typer callback that refuses a number outside the range (and NaN/inf) with the option's name."""

    def callback(ctx, param, value):  # untyped: Typer passes (ctx, param, value) by position
        if value is None:
            return value
        check_number(_option_name(param), value, min, max, min_open, max_open)
        return value

    return callback


FINITE = ranged()
POSITIVE = ranged(0, min_open=True)
NON_NEGATIVE = ranged(0)
AT_LEAST_1 = ranged(1)
AT_LEAST_2 = ranged(2)
SEED = ranged(0, SEED_MAX)

# Upper bounds of sizes and counts, so that a typo (1e30, an extra zero) is one line at parse time
# rather than hours of swapping. Generous: each is far above what a run of the paper uses.
BATCH_MAX = 4096  # images in one step (StyleGAN2's FFHQ runs: 32)
IMAGES_MAX = 10_000_000  # images generated or rendered by one command (FFHQ has 70,000)
STEPS_MAX = 10_000_000  # optimiser steps (an editor's default run: 20,000)
KIMG_MAX = 1_000_000  # thousands of images shown to a GAN (StyleGAN2's FFHQ runs: 25,000)
SEEDS_MAX = 1_000_000  # seeds of one `generate` (each writes two files)
WIDTH_MAX = 16_384  # units in one layer of a network in a config file or on the command line
MINUTES_MAX = 60 * 24 * 366  # a --max-minutes budget: a year

BATCH = ranged(1, BATCH_MAX)
BATCH_2 = ranged(2, BATCH_MAX)
IMAGES = ranged(1, IMAGES_MAX)
IMAGES_2 = ranged(2, IMAGES_MAX)
STEPS = ranged(1, STEPS_MAX)
KIMG = ranged(0, KIMG_MAX, min_open=True)
EVERY_KIMG = ranged(0, KIMG_MAX)
WIDTH = ranged(1, WIDTH_MAX)
MINUTES = ranged(0, MINUTES_MAX, min_open=True)


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_option(ctx, param, value: Optional[int]) -> Optional[int]:
    """Typer callback: a thread count in [1, the CPU count] (more threads than CPUs only slow a run down)."""
    if value is not None:
        check_number(_option_name(param), value, 1, cpu_count())
    return value


def _option_name(param) -> str:
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    return max(opts, key=len) if opts else str(getattr(param, "name", "value"))


# --- seeds ------------------------------------------------------------------------------------
def parse_seeds(spec: str, option: str = "--seeds", max_count: int = SEEDS_MAX) -> list[int]:
    """NVIDIA's generate.py syntax: '0-7' -> [0..7]; '1,5,9'; mixed '0-3,10'.

    A range whose start is after its end ('5-2') and a seed given twice are refused (one file
    per seed: a repeated seed would only write the same file again).
    """
    seeds: list[int] = []
    spans = []
    for part in spec.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            start, stop = (int(lo), int(hi)) if sep and lo else (int(part), int(part))
        except ValueError:
            raise ConfigError(f"{option}: cannot read seeds '{spec}': use e.g. 0-7 or 1,5,9") from None
        if start > stop:
            raise ConfigError(f"{option}: range '{part}' is empty (start after end); write {stop}-{start}")
        outside = [s for s in (start, stop) if not 0 <= s <= SEED_MAX]
        if outside:
            raise ConfigError(f"{option}: seeds must be in 0..{SEED_MAX}, got {outside[0]}")
        spans.append((start, stop))
    count = sum(stop - start + 1 for start, stop in spans)
    if count > max_count:
        raise ConfigError(f"{option}: '{spec}' is {count} seeds, more than the {max_count} one command takes; "
                          "split the range")
    for start, stop in spans:
        seeds += range(start, stop + 1)
    if len(set(seeds)) != len(seeds):
        seen: set[int] = set()
        repeated = [s for s in seeds if s in seen or seen.add(s)]
        raise ConfigError(f"{option}: seed {repeated[0]} is given more than once ('{spec}'); each seed writes one file")
    return seeds


# --- input paths --------------------------------------------------------------------------------
def check_regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """`path` if it is a regular file (or a link to one); refuses a FIFO, device or socket before anything opens it.

    Opening a FIFO for reading blocks until a writer comes, which may be never.
    """
    import stat

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ConfigError(f"no such {what}: {path}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, device or socket)"
        raise ConfigError(f"{path}: {kind}; give the {what} itself")
    return path


# --- output paths -------------------------------------------------------------------------------
def _creatable(path: Path, option: str, shown: Optional[Path] = None) -> None:
    """Refuse `path` unless its nearest existing ancestor is a folder we can write a file in (named as `shown`)."""
    shown = path if shown is None else shown
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {shown}: cannot be created ({parent} is a file, not a folder)")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".genfields-probe-")
    except OSError as exc:
        where = "cannot be written" if shown == parent else f"cannot be created in {parent}"
        raise ConfigError(f"{option} {shown}: {where} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
NAME_ROOM = 24  # what our writers add to an output's name: a temporary `.NAME.PID.tmp`, `_panel`


def _check_name(path: Path, option: str) -> None:
    """Refuse a file name too long to be written under its temporary name; a symlink that leads nowhere."""
    size = len(path.name.encode())
    if size > NAME_MAX - NAME_ROOM:
        raise ConfigError(f"{option} {path.name[:40]}...: a name of {size} bytes is too long (at most "
                          f"{NAME_MAX - NAME_ROOM}, leaving room for the temporary name)")
    if path.is_symlink() and not path.exists():
        raise ConfigError(f"{option} {path}: a symbolic link that leads nowhere (a loop or a missing target)")


def check_output_folder(path: Path, option: str = "--outdir") -> Path:
    """An output folder: existing and writable, or creatable. Nothing is created here."""
    path = Path(path)
    _check_name(path, option)
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{option} {path}: exists and is not a folder")
        _creatable(path / "probe", option, shown=path)
    else:
        _creatable(path, option)
    return path


def check_output_file(path: Path, option: str = "--out", suffixes: Iterable[str] = ()) -> Path:
    """An output file: not a folder, a known suffix (if `suffixes`), in a writable or creatable folder."""
    path = Path(path)
    suffixes = tuple(suffixes)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} {path}: expected a file name ending in {' or '.join(suffixes)}")
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give a file name")
    _check_name(path, option)
    _creatable(path, option)
    return path


def check_free_space(path: Path, needed_bytes: int, what: str) -> None:
    """Refuse work whose outputs (`needed_bytes`, an upper estimate) would not fit on the disk of `path`."""
    import shutil

    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # no figure to check against; the writes themselves fail cleanly
    if needed_bytes > free:
        raise ConfigError(f"{what} needs up to {needed_bytes / 1e6:.0f} MB, {folder} has {free / 1e6:.0f} MB free")


def physical_memory() -> Optional[int]:
    """Bytes of RAM of this machine (None where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(needed_bytes: int, what: str) -> None:
    """Refuse work that would hold more than the machine's RAM (`needed_bytes`, a lower estimate)."""
    total = physical_memory()
    if total is not None and needed_bytes > total:
        raise ConfigError(f"{what} would hold {_bytes(needed_bytes)} in memory, more than this machine's "
                          f"{_bytes(total)}")


def _bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def output_folder(ctx, param, value: Optional[Path]) -> Optional[Path]:
    """Typer callback: `check_output_folder` at parse time."""
    if value is not None:
        check_output_folder(value, _option_name(param))
    return value


def output_file(*suffixes: str) -> Callable:
    """Typer callback factory: `check_output_file` with these suffixes at parse time."""

    def callback(ctx, param, value: Optional[Path]) -> Optional[Path]:
        if value is not None:
            check_output_file(value, _option_name(param), suffixes)
        return value

    return callback


def given_options(ctx, names: Iterable[str]) -> dict:
    """The options among `names` that the user gave (command line or environment), with their values."""
    typed = ("COMMANDLINE", "ENVIRONMENT")  # Click's ParameterSource names
    return {name: ctx.params[name] for name in names
            if getattr(ctx.get_parameter_source(name), "name", None) in typed}


def exclusive(**given: bool) -> None:
    """Refuse more than one of several options that each choose the output format."""
    chosen = [name for name, on in given.items() if on]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} cannot be used together; choose one")


# --- consoles -----------------------------------------------------------------------------------
def cli_console(stderr: bool = False) -> "LazyConsole":
    """A rich Console that does not cut tables to 80 columns when the output is piped or captured.

    Made on first use: importing rich takes a tenth of a second, which a command that prints no
    table (`fields --json`) should not pay.
    """
    return LazyConsole(stderr)


class LazyConsole:
    """Stands for the rich Console of `cli_console` and makes it when it is first used."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console = None

    def __getattr__(self, name: str):
        if self._console is None:
            from rich.console import Console

            stream = sys.stderr if self._stderr else sys.stdout
            tty = hasattr(stream, "isatty") and stream.isatty()
            self._console = Console(stderr=self._stderr, width=None if tty else 1000, soft_wrap=not tty)
        return getattr(self._console, name)


# --- one line per error: the command group ------------------------------------------------------------
DEBUG_ENV = "GENFIELDS_DEBUG"
_COMMAND_END: list[Callable[[], None]] = []


def at_command_end(release: Callable[[], None]) -> None:
    """Run `release` when the command ends, however it ends (a run folder's lock, an empty folder it made).

    A refused command then leaves nothing behind even when it runs in-process (`launch`, tests),
    where atexit would come too late.
    """
    _COMMAND_END.append(release)


def _end_command() -> None:
    while _COMMAND_END:
        try:
            _COMMAND_END.pop()()
        except OSError:
            pass


CPP_BACKTRACE_MARKERS = ("Exception raised from ", "frame #0")  # where PyTorch's C++ backtrace starts


def short_message(exc: BaseException) -> str:
    """An exception's message without PyTorch's C++ backtrace; an OSError as its reason and file name."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc)
    for marker in CPP_BACKTRACE_MARKERS:
        text = text.split(marker, 1)[0]
    return " ".join(text.split()) or type(exc).__name__


def _one_line(exc: BaseException) -> str:
    text = short_message(exc)
    return text if len(text) <= 2000 else text[:2000] + " ..."


class CommandFailed(SystemExit):
    """The exit of a command that failed: status `code`, and the one line it printed as its str()."""

    def __init__(self, message: str, code: int = 2, error: BaseException | None = None):
        super().__init__(code)
        self.message, self.error = message, error  # `error`: what the command raised, for tests and callers

    def __str__(self) -> str:
        return self.message


def _fail(message: str, code: int, error: BaseException | None = None) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise CommandFailed(message, code, error) from None


@functools.lru_cache(maxsize=None)
def one_line_group():
    """The Typer group class of `genfields` (and of any standalone sub-app): every error one line, exit 2.

    Built on first use, so that importing genfields.errors does not import Typer.
    """
    import typer
    from typer._click import exceptions as click_exceptions  # Typer's own Click
    from typer.core import TyperGroup

    class GenfieldsGroup(TyperGroup):
        """The command group whose every error is one line on stderr and exit status 2.

        Click's usage errors (a bad option value, a missing option) lose their usage box; a
        `GenfieldsError` is printed as it is; any other exception as its type and first line, with
        the hint to rerun with --debug. An interrupt (Ctrl-C) is one line and status 130.
        """

        def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
            args = list(sys.argv[1:] if args is None else args)
            debug = "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")
            args = [a for a in args if a != "--debug"]
            try:
                try:
                    result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                finally:
                    _end_command()
            except click_exceptions.NoArgsIsHelpError as exc:
                print(exc.format_message(), file=sys.stderr)
                raise CommandFailed("no command given", 2) from None
            except click_exceptions.ClickException as exc:
                message = " ".join(exc.format_message().split())
                _fail(message, exc.exit_code if exc.exit_code != 1 else 2, exc)
            except typer.Abort:
                _fail("aborted", 1)
            except (KeyboardInterrupt, typer.Exit) as exc:
                code = getattr(exc, "exit_code", 130)
                if code == 130:
                    print("interrupted", file=sys.stderr)
                if standalone_mode:
                    sys.exit(code)
                return code
            except GenfieldsError as exc:
                if debug:
                    raise
                _fail(_one_line(exc), 2, exc)
            except Exception as exc:  # noqa: BLE001 - the promise is one line for anything a command raises
                if debug:
                    raise
                _fail(f"{type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)", 2, exc)
            if result == 130:  # Typer turned a KeyboardInterrupt into exit status 130
                print("interrupted", file=sys.stderr)
            if standalone_mode:
                sys.exit(result if isinstance(result, int) else 0)
            return result

    return GenfieldsGroup
