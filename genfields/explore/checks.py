"""Reading the explore page's JSON requests field by field: strict types, ranges, and errors naming the field.

    body = Payload(json_object)
    seed = body.integer("seed", default=0, lo=0, hi=SEED_MAX)   # 1.7, true, "3" and 2**80 are refused
    body.finish()                                                # a key nobody read is refused too

Every refusal is a `RequestError`: one line, the dotted path of the field (`view.channels[2].name`)
and an HTTP status (400 unless said otherwise). Values are never coerced: an integer field takes
a JSON integer (or an integral float such as 3.0), a number field takes a JSON number, and ranges
are checked before any conversion, so a 400-digit integer is a message, not an OverflowError.
"""

from __future__ import annotations

from collections.abc import Sequence

from genfields.errors import ConfigError

SHOWN_CHARS = 40  # how much of a refused value a message repeats
MAX_TEXT = 200  # characters of any text field
MAX_ITEMS = 256  # items of any list field


class RequestError(ConfigError):
    """A request the page or an API client got wrong: the message, the field it names, the HTTP status."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field = field
        self.status = status


def shown(value) -> str:
    """A refused value as a message repeats it: its repr, cut to SHOWN_CHARS characters."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS - 12]}... ({len(text)} characters)"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_integer(value, field: str, lo: int, hi: int) -> int:
    """`value` as an int in [lo, hi]; JSON true, 1.7, "3" and out-of-range integers are RequestErrors."""
    if not _is_number(value) or (isinstance(value, float) and not value.is_integer()):
        raise RequestError(f"{field} must be an integer, got {shown(value)}", field)
    if not lo <= value <= hi:  # compared before int(): inf and 10**400 are refused here, not overflowed
        raise RequestError(f"{field} must be an integer in {lo}..{hi}, got {shown(value)}", field)
    return int(value)


def check_number(value, field: str, lo: float, hi: float) -> float:
    """`value` as a finite float in [lo, hi] (NaN, infinities and booleans are refused)."""
    if not _is_number(value):
        raise RequestError(f"{field} must be a number, got {shown(value)}", field)
    if not lo <= value <= hi:  # False for NaN
        raise RequestError(f"{field} must be a number in {lo:g}..{hi:g}, got {shown(value)}", field)
    return float(value)


def check_text(value, field: str, max_chars: int = MAX_TEXT) -> str:
    """A printable string of at most `max_chars` characters."""
    if not isinstance(value, str):
        raise RequestError(f"{field} must be a string, got {shown(value)}", field)
    if len(value) > max_chars:
        raise RequestError(f"{field} is {len(value)} characters long; the limit is {max_chars}", field)
    if not value.isprintable():
        raise RequestError(f"{field} holds control characters: {shown(value)}", field)
    return value


def check_choice(value, field: str, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise RequestError(f"{field} must be one of {', '.join(options)}, got {shown(value)}", field)
    return value


class Payload:
    """A JSON object of a request, read key by key with checks; `finish()` refuses the keys nobody read."""

    def __init__(self, data, path: str = ""):
        if not isinstance(data, dict):
            raise RequestError(f"{path or 'the request body'} must be a JSON object, got {shown(data)}", path or None)
        self.data = data
        self.path = path
        self.read: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default=None):
        self.read.add(key)
        value = self.data.get(key)
        return default if value is None else value

    def integer(self, key: str, default: int | None, lo: int, hi: int) -> int:
        value = self.raw(key, default)
        if value is None:
            raise RequestError(f"{self.field(key)} is missing", self.field(key))
        return check_integer(value, self.field(key), lo, hi)

    def number(self, key: str, default: float | None, lo: float, hi: float) -> float:
        value = self.raw(key, default)
        if value is None:
            raise RequestError(f"{self.field(key)} is missing", self.field(key))
        return check_number(value, self.field(key), lo, hi)

    def text(self, key: str, default: str | None = None, max_chars: int = MAX_TEXT) -> str:
        value = self.raw(key, default)
        if value is None:
            raise RequestError(f"{self.field(key)} is missing", self.field(key))
        return check_text(value, self.field(key), max_chars)

    def choice(self, key: str, default: str | None, options: Sequence[str]) -> str:
        return check_choice(self.raw(key, default), self.field(key), options)

    def items(self, key: str, max_items: int = MAX_ITEMS) -> list | None:
        """A list field (None when absent or null), at most `max_items` long."""
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise RequestError(f"{self.field(key)} must be a list, got {shown(value)}", self.field(key))
        if len(value) > max_items:
            raise RequestError(f"{self.field(key)} has {len(value)} items; the limit is {max_items}", self.field(key))
        return value

    def obj(self, key: str) -> "Payload | None":
        value = self.raw(key)
        return None if value is None else Payload(value, self.field(key))

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            name = shown(unknown[0]) if len(unknown[0]) > SHOWN_CHARS else unknown[0]
            raise RequestError(f"unknown field '{name}' in {self.path or 'the request'}", self.field(unknown[0]))


def check_box(values, field: str, size: int) -> tuple[int, int, int, int]:
    """A box [x0, y0, x1, y1] of whole pixels inside a size x size image, x0 < x1 and y0 < y1."""
    if not isinstance(values, list) or len(values) != 4:
        raise RequestError(f"{field} must be [x0, y0, x1, y1], got {shown(values)}", field)
    x0, y0, x1, y1 = (check_integer(v, f"{field}[{i}]", 0, size) for i, v in enumerate(values))
    if not (x0 < x1 and y0 < y1):
        raise RequestError(f"{field} must have x0 < x1 and y0 < y1, got {values}", field)
    return x0, y0, x1, y1
