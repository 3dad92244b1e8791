"""The web server of `genfields explore`: a small Starlette app on uvicorn, serving a plain page.

URLs: `/` the page, `/static/*` its script and style (package data, nothing from the internet),
`/api/<request>` the JSON requests of `genfields.explore.api`, `/api/upload?align=1&name=photo.jpg` a raw photo.
Every error under /api/ is JSON `{"error": ..., "field": ...}` with a 4xx status (a 500 only for a bug).
The model runs in a worker thread, so the server keeps answering while it computes.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import traceback
from pathlib import Path

from genfields.errors import ConfigError, GenfieldsError

from . import api
from .catalogue import Catalogue
from .checks import RequestError, shown
from .session import MAX_UPLOAD_BYTES, Explorer

STATIC = Path(__file__).parent / "static"
MAX_JSON_BYTES = 2**20
EXTRA_HINT = "genfields explore needs the explore extra: pip install 'genfields[explore]' (starlette, uvicorn)"


class ExtraMissingError(GenfieldsError):
    """The optional web dependencies are not installed."""


def require_web():
    """uvicorn, after checking that the web extra is installed (one-line error otherwise)."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ExtraMissingError(EXTRA_HINT) from None
    return uvicorn


def read_json(body: bytes):
    """A request body as JSON ({} when empty); a RequestError for anything else (deep nesting and
    integers past Python's 4,300-digit limit included)."""
    if not body:
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, too many digits
        raise RequestError(f"the request body is not valid JSON: {shown(str(exc))[1:-1]}") from None
    except RecursionError:
        raise RequestError("the request body nests too deeply") from None


def upload_options(query) -> tuple[bool, str, str | None]:
    """(align, name, model) of `/api/upload?align=1&name=photo.jpg&model=synth64`; unknown options refused."""
    unknown = sorted(set(query) - {"align", "name", "model"})
    if unknown:
        raise RequestError(f"unknown upload option {shown(unknown[0])}", unknown[0])
    align = query.get("align", "1")
    if align not in ("0", "1", "true", "false"):
        raise RequestError(f"align must be 0 or 1, got {shown(align)}", "align")
    return align in ("1", "true"), query.get("name", "upload"), query.get("model")


async def read_limited(request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it (or its Content-Length) passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"the upload is {int(declared) / 2**20:.1f} MB; the limit is {limit // 2**20} MB",
                           "file", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the upload is over the {limit // 2**20} MB limit", "file", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(target: Explorer | Catalogue):
    """The ASGI app for one explorer, or for a catalogue of them (the page's model switch)."""
    require_web()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def answered(fn, *args) -> JSONResponse:
        """Run `fn` (which gives (status, answer)) off the event loop; a bug is a JSON 500 and the server goes on."""
        try:
            status, answer = await run_in_threadpool(fn, *args)
        except RequestError as exc:
            status, answer = exc.status, {"error": str(exc), "field": exc.field}
        except Exception as exc:  # a bug, not a user error: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            status, answer = 500, {"error": f"internal error: {type(exc).__name__}: {shown(str(exc))[1:-1]}",
                                   "field": None}
        return JSONResponse(answer, status_code=status)

    async def request_endpoint(request):
        if request.path_params["name"] == "upload":  # any method but POST: /api/upload's own route did not match
            return JSONResponse({"error": f"{request.method} /api/upload: send the photo's bytes by POST",
                                 "field": None}, status_code=405)
        try:
            payload = read_json(await read_limited(request, MAX_JSON_BYTES))
        except RequestError as exc:
            return JSONResponse({"error": str(exc), "field": exc.field if exc.field != "file" else None},
                                status_code=exc.status)
        return await answered(api.respond, target, request.path_params["name"], payload)

    async def upload_endpoint(request):
        try:
            align, name, model = upload_options(request.query_params)
            data = await read_limited(request, MAX_UPLOAD_BYTES)
        except RequestError as exc:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=exc.status)
        return await answered(api.respond_upload, target, data, align, name, model)

    async def http_error(request, exc):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}", "field": None},
                                status_code=exc.status_code)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    routes = [Route("/", index), Route("/api/upload", upload_endpoint, methods=["POST"]),
              Route("/api/{name}", request_endpoint, methods=["GET", "POST"]),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port); a ConfigError naming --port when it is taken."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc})") from None
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


class ExploreServer:
    """A running server: `start()` in a background thread (tests, screenshots) or `run()` in the foreground."""

    def __init__(self, explorer: Explorer | Catalogue, host: str = "127.0.0.1", port: int = 7860, log_level: str = "warning"):
        uvicorn = require_web()
        self.socket = bind(host, port)
        self.url = url_of(self.socket)
        config = uvicorn.Config(create_app(explorer), log_level=log_level, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self) -> "ExploreServer":
        self.thread = threading.Thread(target=self.run, daemon=True, name="genfields-explore")
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the explore server stopped while starting")
            self.thread.join(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        self.socket.close()
