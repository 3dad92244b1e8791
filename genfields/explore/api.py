"""The explore page's requests as plain function calls: `call(explorer, "render", {...})` -> a JSON-able dict.

The web server only maps URLs to these calls, so the tests and the benchmark run exactly what a
request runs, without a browser. A user error (unknown channel, bad upload, no face found) comes
back as `{"error": "one line"}`; the page shows it and the server goes on. Every answer carries
`ms`, the server time the call took.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from genfields.errors import ConfigError, GenfieldsError

from .session import Explorer, View


def _view(explorer: Explorer, payload: dict) -> View:
    return View.from_request(payload.get("view") or {}, explorer.layout)


def _payload(payload) -> dict:
    if not isinstance(payload, dict):
        raise ConfigError("the request body must be a JSON object")
    return payload


ENDPOINTS: dict[str, Callable[[Explorer, dict], dict]] = {
    "info": lambda ex, p: ex.info(),
    "render": lambda ex, p: ex.render(_view(ex, p)),
    "fields": lambda ex, p: ex.fields_at(p.get("x"), p.get("y")),
    "probe": lambda ex, p: ex.probe(_view(ex, p), p.get("x"), p.get("y"), p.get("layer", "conv0"),
                                    p.get("amount", 1.0)),
    "rank": lambda ex, p: ex.rank_channels(_view(ex, p), p.get("x"), p.get("y"), p.get("top", 12)),
    "channel": lambda ex, p: ex.channel(p.get("name", "")),
    "edit": lambda ex, p: ex.edit(_view(ex, p), str(p.get("attribute", "")), p.get("convs"), p.get("gf"),
                                  p.get("top", 12)),
}


def call(explorer: Explorer, endpoint: str, payload: dict | None = None) -> dict:
    """Run one request; user errors become {"error": ...}. Unknown endpoints are a ConfigError too."""
    start = time.perf_counter()
    try:
        if endpoint not in ENDPOINTS:
            raise ConfigError(f"unknown request '{endpoint}'")
        result = ENDPOINTS[endpoint](explorer, _payload(payload if payload is not None else {}))
    except GenfieldsError as exc:
        result = {"error": str(exc)}
    result["ms"] = round(1000 * (time.perf_counter() - start), 1)
    return result


def upload(explorer: Explorer, data: bytes, align: bool, name: str = "upload") -> dict:
    """An uploaded attribute photo (raw bytes, its file name for messages), as `call` answers."""
    start = time.perf_counter()
    try:
        result = explorer.upload(data, align=align, name=name)
    except GenfieldsError as exc:
        result = {"error": str(exc)}
    result["ms"] = round(1000 * (time.perf_counter() - start), 1)
    return result
