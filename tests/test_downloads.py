"""Downloads against a local HTTP server on 127.0.0.1: full, resumed, refused, offline, listed."""

from __future__ import annotations

import bz2
import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from genfields import downloads
from genfields.downloads import Asset, DownloadError, download, require

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


class RangeHandler(BaseHTTPRequestHandler):
    """Serves `files` by path, honouring `Range: bytes=N-`; records the Range headers it saw."""

    files: dict[str, bytes] = {}
    ranges: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            self.ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    RangeHandler.files = {"/w.pth": PAYLOAD, "/w.dat.bz2": bz2.compress(PAYLOAD)}
    RangeHandler.ranges = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _asset(url: str, sha: str | None = None, **kw) -> Asset:
    return Asset(name="test-weights", filename="w.pth", url=url, sha256=sha, **kw)


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_full_download_verifies_and_renames(server, tmp_path):
    path = download(_asset(f"{server}/w.pth", SHA), root=tmp_path, progress=False)
    assert path == tmp_path / "w.pth" and path.read_bytes() == PAYLOAD
    assert not list(tmp_path.glob("*.part"))
    assert downloads.status(_asset("", SHA), tmp_path) == "verified"


def test_resume_from_partial_part_file(server, tmp_path):
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD[:5000])
    path = download(_asset(f"{server}/w.pth", SHA), root=tmp_path, progress=False)
    assert RangeHandler.ranges == ["bytes=5000-"]
    assert path.read_bytes() == PAYLOAD


def test_prefix_only_digest_and_bz2(server, tmp_path):
    asset = Asset(name="t", filename="w.dat", url=f"{server}/w.dat.bz2", sha256_prefix=SHA[:8], compression="bz2")
    assert asset.verification == "sha256-prefix"
    assert download(asset, root=tmp_path, progress=False).read_bytes() == PAYLOAD


def test_hash_mismatch_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match="does not match"):
        download(_asset(f"{server}/w.pth", "0" * 64), root=tmp_path, progress=False)
    assert not (tmp_path / "w.pth").exists() and not list(tmp_path.glob("*.part"))


def test_offline_error_names_file_url_and_folder(tmp_path):
    with socket.socket() as s:  # a port with nobody listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/w.pth"
    with pytest.raises(DownloadError) as info:
        download(_asset(url, SHA), root=tmp_path, progress=False, timeout=5)
    message = str(info.value)
    assert "w.pth" in message and url in message and str(tmp_path / "w.pth") in message


def test_require_missing_says_where_to_put_it(tmp_path):
    with pytest.raises(DownloadError, match="pt_inception-2015-12-05-6726825d.pth"):
        require("inception-fid", root=tmp_path)
    with pytest.raises(DownloadError, match="unknown component"):
        require("nope", root=tmp_path)


def test_registry_entries_are_complete():
    for asset in downloads.REGISTRY.values():
        assert asset.url.startswith("http") and asset.licence and asset.hash_source
        if asset.sha256:
            assert len(asset.sha256) == 64 and int(asset.sha256, 16) >= 0
        if asset.sha256 and asset.sha256_prefix:
            assert asset.sha256.startswith(asset.sha256_prefix)
    # torch-hub names carry the first 8 hex digits of the SHA-256
    fid = downloads.REGISTRY["inception-fid"]
    assert fid.sha256.startswith(fid.filename.rsplit("-", 1)[1].split(".")[0])


def test_cli_list_and_download(server, tmp_path, monkeypatch):
    from genfields.cli import app

    monkeypatch.setenv("GENFIELDS_HOME", str(tmp_path))
    monkeypatch.setitem(downloads.REGISTRY, "test-weights", _asset(f"{server}/w.pth", SHA))
    runner = CliRunner()
    result = runner.invoke(app, ["download", "test-weights"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["download", "--list", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["test-weights"]["status"] == "verified"
    assert rows["inception-fid"]["status"] == "missing"
    assert set(downloads.REGISTRY) <= set(rows)


def test_cli_download_all_goes_on_after_a_failure(server, tmp_path, monkeypatch):
    from genfields.cli import app

    monkeypatch.setenv("GENFIELDS_HOME", str(tmp_path))
    monkeypatch.setattr(downloads, "REGISTRY", {
        "broken": Asset(name="broken", filename="x.pth", url=f"{server}/missing.pth"),
        "test-weights": _asset(f"{server}/w.pth", SHA)})
    result = CliRunner().invoke(app, ["download", "all"])
    assert result.exit_code == 2 and "1 of 2 downloads failed: broken" in str(result.exception)
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD


def test_unpublished_digest_is_pinned_on_first_download_and_enforced(server, tmp_path, monkeypatch):
    """Trust on first use (NVIDIA publishes no digest for the paper256 generator): pinned, printed, enforced."""
    from genfields.cli import app

    monkeypatch.setenv("GENFIELDS_HOME", str(tmp_path))
    asset = _asset(f"{server}/w.pth")  # no digest at all
    monkeypatch.setitem(downloads.REGISTRY, "test-weights", asset)
    runner = CliRunner()
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["download", "--list", "--json"]).stdout)}
    assert rows["test-weights"]["verification"] == "none"
    result = runner.invoke(app, ["download", "test-weights"])
    assert result.exit_code == 0 and f"SHA-256 {SHA} pinned" in result.stdout, result.output
    pin = json.loads((tmp_path / "pins.json").read_text())["test-weights"]
    assert pin["sha256"] == SHA and pin["size"] == len(PAYLOAD) and f"{server}/w.pth" in pin["origin"]
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["download", "--list", "--json"]).stdout)}
    assert rows["test-weights"]["verification"] == "sha256-pinned" and rows["test-weights"]["status"] == "verified"
    assert rows["test-weights"]["digest_source"].startswith("pinned ") and "first complete download" in \
        rows["test-weights"]["digest_source"]
    table = runner.invoke(app, ["download", "--list"]).stdout
    assert "sha256-pinned" in table and "first complete download" in table
    # the server now serves other bytes of the same size: refused, the trusted file kept
    RangeHandler.files["/w.pth"] = PAYLOAD[::-1]
    result = runner.invoke(app, ["download", "test-weights", "--force"])
    last = result.stderr.splitlines()[-1]  # after the progress bar: one line
    assert result.exit_code == 2 and result.stderr.count("error") == 1 and "Traceback" not in result.output
    assert last.startswith("error: w.pth: SHA-256 ") and "differs from the " + SHA in last
    assert (tmp_path / "w.pth").read_bytes() == PAYLOAD and not list(tmp_path.glob("*.part"))
    # a file swapped in the cache is refused where it is used
    (tmp_path / "w.pth").write_bytes(PAYLOAD[::-1])
    with pytest.raises(DownloadError, match="differs from the " + SHA):
        require("test-weights", root=tmp_path)
    assert downloads.status(asset, tmp_path) == "corrupt"


def test_a_cached_file_without_digest_is_pinned_when_first_seen(tmp_path):
    asset = _asset("http://127.0.0.1:9/w.pth")
    (tmp_path / "w.pth").write_bytes(PAYLOAD)
    assert download(asset, root=tmp_path, progress=False) == tmp_path / "w.pth"  # no network: the cached file
    pin = downloads.read_pins(tmp_path)["test-weights"]
    assert pin["sha256"] == SHA and "found in the cache" in pin["origin"]
