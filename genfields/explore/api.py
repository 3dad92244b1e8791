"""The explore page's requests as plain function calls: `call(explorer, "render", {...})` -> a JSON-able dict.

The web server only maps URLs to these calls, so the tests and the benchmark run exactly what a
request runs, without a browser. Every field of a request is checked (`checks.Payload`): a user
error (a seed of 1.7, an unknown channel, a bad upload, no face found) comes back as
`{"error": "one line", "field": "view.seed"}` with an HTTP status (`respond` gives both: 400 for
bad input, 404 for an unknown request, 413 for a too large upload, 422 for an image that cannot be
used); the server goes on. Every answer carries `ms`, the server time the call took.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from genfields.errors import SEED_MAX, GenfieldsError
from genfields.imageio import ImageError
from genfields.stylegan2.network import NOISE_MODES

from .catalogue import Catalogue
from .checks import Payload, RequestError, check_box, check_text, shown
from .session import MAX_CHANNEL_VALUE, MAX_TOP, MIX_GROUPS, REGION_PROBES, Explorer, View

MAX_CHANNEL_NAME = 40
MAX_LINK = 4000
MIN_TRUNCATION, MAX_TRUNCATION = -1.0, 2.0


# --- reading requests ---------------------------------------------------------------------------------
def read_channel(explorer: Explorer, value, field: str) -> int:
    """A style channel's flat offset from its name in the paper's (dS_448), StyleSpace (9_409) or conv notation.

    A bare number is refused: `parse_index` reads it as a 0-based offset while dS_N is 1-based."""
    text = check_text(value, field, MAX_CHANNEL_NAME).strip()
    layout = explorer.layout
    if text.isascii() and text.isdigit():
        flat = int(text)
        hint = (f"write dS_{flat + 1}, {layout.format_index(flat, 'stylespace')} or {layout.format_index(flat, 'conv')}"
                if flat < layout.dim else f"S has {layout.dim} channels, dS_1 to dS_{layout.dim}")
        raise RequestError(f"{field}: a bare number is ambiguous ('{text}' would be the 0-based offset, which the "
                           f"paper calls dS_{flat + 1}); {hint}", field)
    try:
        return layout.parse_index(text)
    except GenfieldsError as exc:
        raise RequestError(f"{field}: {exc}", field) from None


def read_view(explorer: Explorer, body: Payload) -> View:
    """The `view` of a request (absent: seed 0, truncation 1, constant noise)."""
    view = body.obj("view") or Payload({}, "view")
    channels: dict[int, float] = {}
    for i, item in enumerate(view.items("channels") or []):
        entry = Payload(item, f"view.channels[{i}]")
        flat = read_channel(explorer, entry.raw("name", ""), entry.field("name"))
        value = entry.number("value", 0.0, -MAX_CHANNEL_VALUE, MAX_CHANNEL_VALUE)
        entry.finish()
        if flat in channels:
            raise RequestError(f"{entry.field('name')}: {explorer.layout.format_index(flat, 'stylespace')} is "
                               "given twice", entry.field("name"))
        channels[flat] = value
    mix_seed, mix = None, None
    if (mixing := view.obj("mix")) is not None:
        mix_seed = mixing.integer("seed", None, 0, SEED_MAX)
        mix = mixing.choice("styles", None, list(MIX_GROUPS))
        mixing.finish()
    result = View(seed=view.integer("seed", 0, 0, SEED_MAX),
                  truncation=view.number("truncation", 1.0, MIN_TRUNCATION, MAX_TRUNCATION),
                  noise=view.choice("noise", "const", NOISE_MODES),
                  channels=tuple(sorted((flat, value) for flat, value in channels.items() if value != 0.0)),
                  mix_seed=mix_seed, mix=mix)
    view.finish()
    return result


def _pixel(explorer: Explorer, body: Payload) -> tuple[int, int]:
    last = explorer.resolution - 1
    return body.integer("x", None, 0, last), body.integer("y", None, 0, last)


def _layer_names(body: Payload, key: str) -> list[str] | None:
    names = body.items(key)
    return None if names is None else [check_text(n, f"{key}[{i}]") for i, n in enumerate(names)]


def _finished(body: Payload, result):
    body.finish()
    return result()


# --- the requests ---------------------------------------------------------------------------------
def _render(ex: Explorer, body: Payload) -> dict:
    view = read_view(ex, body)
    return _finished(body, lambda: ex.render(view))


def _fields(ex: Explorer, body: Payload) -> dict:
    x, y = _pixel(ex, body)
    return _finished(body, lambda: ex.fields_at(x, y))


def _probe(ex: Explorer, body: Payload) -> dict:
    view, (x, y) = read_view(ex, body), _pixel(ex, body)
    layer, amount = body.text("layer", "conv0"), body.number("amount", 1.0, -1.0, 10.0)
    return _finished(body, lambda: ex.probe(view, x, y, layer, amount))


def _rank(ex: Explorer, body: Payload) -> dict:
    view, (x, y) = read_view(ex, body), _pixel(ex, body)
    top = body.integer("top", 12, 1, MAX_TOP)
    return _finished(body, lambda: ex.rank_channels(view, x, y, top))


def _channel(ex: Explorer, body: Payload) -> dict:
    flat = read_channel(ex, body.raw("name", ""), "name")
    return _finished(body, lambda: ex.channel_row(flat))


def _features(ex: Explorer, body: Payload) -> dict:
    view, (x, y) = read_view(ex, body), _pixel(ex, body)
    layer, top = body.text("layer", "conv0"), body.integer("top", 16, 1, 64)
    return _finished(body, lambda: ex.feature_maps(view, x, y, layer, top))


def _region(ex: Explorer, body: Payload) -> dict:
    view = read_view(ex, body)
    box = check_box(body.raw("box"), "box", ex.resolution)
    top, probes = body.integer("top", 12, 1, MAX_TOP), body.integer("probes", REGION_PROBES, 4, 256)
    return _finished(body, lambda: ex.region_channels(view, box, top, probes))


def _capture(ex: Explorer, body: Payload) -> dict:
    view, link = read_view(ex, body), body.text("link", "", MAX_LINK)
    return _finished(body, lambda: ex.capture(view, link))


def _edit(ex: Explorer, body: Payload) -> dict:
    view = read_view(ex, body)
    attribute = body.text("attribute", "")
    convs = _layer_names(body, "convs")
    gf = body.items("gf")
    top = body.integer("top", 12, 1, MAX_TOP)
    return _finished(body, lambda: ex.edit(view, attribute, convs, gf, top))


ENDPOINTS: dict[str, Callable[[Explorer, Payload], dict]] = {
    "info": lambda ex, body: _finished(body, ex.info), "render": _render, "fields": _fields, "probe": _probe,
    "rank": _rank, "channel": _channel, "features": _features, "region": _region, "capture": _capture,
    "edit": _edit,
}


# --- answering ----------------------------------------------------------------------------------------
def _catalogue(target: Explorer | Catalogue) -> Catalogue:
    return target if isinstance(target, Catalogue) else Catalogue(target, shipped=[])


def _error(exc: GenfieldsError) -> tuple[int, dict]:
    if isinstance(exc, RequestError):
        return exc.status, {"error": str(exc), "field": exc.field}
    if isinstance(exc, ImageError) or type(exc).__name__ == "NoFaceError":  # a file that cannot be used
        return 422, {"error": str(exc), "field": "file"}
    return 400, {"error": str(exc), "field": None}


def _timed(run: Callable[[], dict]) -> tuple[int, dict]:
    start = time.perf_counter()
    try:
        status, result = 200, run()
    except GenfieldsError as exc:
        status, result = _error(exc)
    result["ms"] = round(1000 * (time.perf_counter() - start), 1)
    return status, result


def respond(target: Explorer | Catalogue, endpoint: str, payload=None) -> tuple[int, dict]:
    """(HTTP status, answer) of one request to an explorer or to a catalogue of them (`model` picks one)."""
    def run() -> dict:
        if endpoint not in ENDPOINTS:
            raise RequestError(f"unknown request '{shown(endpoint)[1:-1]}'; the requests are "
                               f"{', '.join(ENDPOINTS)}, upload", None, 404)
        body = Payload(payload if payload is not None else {})
        catalogue = _catalogue(target)
        explorer = catalogue.get(body.raw("model"))
        result = ENDPOINTS[endpoint](explorer, body)
        if endpoint == "info":
            result["models"] = catalogue.names
        return result

    return _timed(run)


def call(target: Explorer | Catalogue, endpoint: str, payload=None) -> dict:
    """The answer of `respond` alone (user errors are {"error": ..., "field": ...})."""
    return respond(target, endpoint, payload)[1]


def respond_upload(target: Explorer | Catalogue, data: bytes, align: bool, name: str = "upload",
                   model: str | None = None) -> tuple[int, dict]:
    """(HTTP status, answer) of an uploaded attribute photo (raw bytes; its file name only for messages)."""
    return _timed(lambda: _catalogue(target).get(model).upload(data, align=align, name=name))


def upload(target: Explorer | Catalogue, data: bytes, align: bool, name: str = "upload") -> dict:
    """An uploaded attribute photo, as `call` answers."""
    return respond_upload(target, data, align, name)[1]

