"""The web server of `genfields explore`: a small Starlette app on uvicorn, serving a plain page.

URLs: `/` the page, `/static/*` its script and style (package data, nothing from the internet),
`/api/<request>` the JSON requests of `genfields.explore.api`, `/api/upload?align=1&name=photo.jpg` a raw photo.
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
from .session import Explorer

STATIC = Path(__file__).parent / "static"
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


def create_app(explorer: Explorer):
    """The ASGI app for one explorer."""
    require_web()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def guarded(fn, *args) -> JSONResponse:
        try:
            return JSONResponse(await run_in_threadpool(fn, *args))
        except Exception as exc:  # a bug, not a user error: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    async def request_endpoint(request):
        body = await request.body()
        try:
            payload = json.loads(body) if body else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "the request body is not JSON"})
        return await guarded(api.call, explorer, request.path_params["name"], payload)

    async def upload_endpoint(request):
        align = request.query_params.get("align", "1") not in ("0", "false", "")
        name = request.query_params.get("name", "upload")
        return await guarded(api.upload, explorer, await request.body(), align, name)

    routes = [Route("/", index), Route("/api/upload", upload_endpoint, methods=["POST"]),
              Route("/api/{name}", request_endpoint, methods=["GET", "POST"]),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes)


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

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 7860, log_level: str = "warning"):
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
