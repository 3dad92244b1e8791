"""`genfields explore`'s HTTP API: every bad request a user or a client can send is a 4xx JSON answer
naming the field (never a 500, never a silently changed value), and the server answers afterwards."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest

from genfields.stylegan2 import shipped_models

pytestmark = pytest.mark.skipif("synth64" not in shipped_models(), reason="needs the shipped synth64 generator")
pytest.importorskip("uvicorn", reason="the explore extra is not installed")


@pytest.fixture(scope="module")
def server():
    from genfields.explore import Explorer
    from genfields.explore.server import ExploreServer

    running = ExploreServer(Explorer.load("synth64"), port=0).start()
    yield running
    running.stop()


def send(server, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None):
    """(status, JSON answer or None, raw text) of one HTTP request."""
    host, port = urllib.parse.urlsplit(server.url).netloc.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=headers or {})
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    try:
        return response.status, json.loads(text), text
    except ValueError:
        return response.status, None, text


def post(server, endpoint: str, payload) -> tuple[int, dict | None, str]:
    return send(server, "POST", f"/api/{endpoint}", json.dumps(payload), {"Content-Type": "application/json"})


BIG = 10**400
NOT_AN_IMAGE = b"certainly not an image"

# (what, method, path, body, expected status, expected field): every case of issue 33 and more
BAD_REQUESTS = [
    ("superscript digit as channel", "POST", "/api/channel", {"name": "²"}, 400, "name"),
    ("bare number as channel (0-based vs dS_N)", "POST", "/api/channel", {"name": "448"}, 400, "name"),
    ("overlong channel digits", "POST", "/api/channel", {"name": "dS_" + "9" * 5000}, 400, "name"),
    ("control character in channel", "POST", "/api/channel", {"name": "dS_1\x00"}, 400, "name"),
    ("channel name not a string", "POST", "/api/channel", {"name": 12}, 400, "name"),
    ("channels not a list", "POST", "/api/render", {"view": {"channels": 5}}, 400, "view.channels"),
    ("channel not an object", "POST", "/api/render", {"view": {"channels": [5]}}, 400, "view.channels[0]"),
    ("unknown channel at value 0", "POST", "/api/render", {"view": {"channels": [{"name": "bogus", "value": 0}]}},
     400, "view.channels[0].name"),
    ("channel twice", "POST", "/api/render", {"view": {"channels": [{"name": "3_5", "value": 1},
                                                                     {"name": "conv2:5", "value": 2}]}},
     400, "view.channels[1].name"),
    ("channel value true", "POST", "/api/render", {"view": {"channels": [{"name": "3_5", "value": True}]}},
     400, "view.channels[0].value"),
    ("channel value out of range", "POST", "/api/render", {"view": {"channels": [{"name": "3_5", "value": 1e9}]}},
     400, "view.channels[0].value"),
    ("400-digit truncation", "POST", "/api/render", f'{{"view": {{"truncation": {BIG}}}}}', 400, "view.truncation"),
    ("NaN truncation", "POST", "/api/render", '{"view": {"truncation": NaN}}', 400, "view.truncation"),
    ("truncation as text", "POST", "/api/render", {"view": {"truncation": "0.7"}}, 400, "view.truncation"),
    ("5000-digit integer", "POST", "/api/render", '{"view": {"seed": ' + "9" * 5000 + "}}", 400, None),
    ("100k nested brackets", "POST", "/api/render", "[" * 100_000, 400, None),
    ("seed 1.7", "POST", "/api/render", {"view": {"seed": 1.7}}, 400, "view.seed"),
    ("seed true", "POST", "/api/render", {"view": {"seed": True}}, 400, "view.seed"),
    ("seed -5", "POST", "/api/render", {"view": {"seed": -5}}, 400, "view.seed"),
    ("seed 1e20", "POST", "/api/render", {"view": {"seed": 1e20}}, 400, "view.seed"),
    ("seed 2**32", "POST", "/api/render", {"view": {"seed": 2**32}}, 400, "view.seed"),
    ("noise unknown", "POST", "/api/render", {"view": {"noise": "loud"}}, 400, "view.noise"),
    ("view not an object", "POST", "/api/render", {"view": [1, 2]}, 400, "view"),
    ("unknown view field", "POST", "/api/render", {"view": {"seeed": 3}}, 400, "view.seeed"),
    ("unknown request field", "POST", "/api/render", {"sed": 3}, 400, "sed"),
    ("mix styles unknown", "POST", "/api/render", {"view": {"mix": {"seed": 3, "styles": "all"}}}, 400,
     "view.mix.styles"),
    ("mix seed missing", "POST", "/api/render", {"view": {"mix": {"styles": "coarse"}}}, 400, "view.mix.seed"),
    ("x 3.7", "POST", "/api/fields", {"x": 3.7, "y": 1}, 400, "x"),
    ("x outside the image", "POST", "/api/fields", {"x": 64, "y": 1}, 400, "x"),
    ("y missing", "POST", "/api/fields", {"x": 3}, 400, "y"),
    ("probe layer unknown", "POST", "/api/probe", {"x": 1, "y": 1, "layer": "conv42"}, 400, "layer"),
    ("probe layer not text", "POST", "/api/probe", {"x": 1, "y": 1, "layer": 4}, 400, "layer"),
    ("probe amount text", "POST", "/api/probe", {"x": 1, "y": 1, "amount": "1"}, 400, "amount"),
    ("rank top 0", "POST", "/api/rank", {"x": 1, "y": 1, "top": 0}, 400, "top"),
    ("rank top 2**80", "POST", "/api/rank", {"x": 1, "y": 1, "top": 2**80}, 400, "top"),
    ("feature layer unknown", "POST", "/api/features", {"x": 1, "y": 1, "layer": "toRGB"}, 400, "layer"),
    ("region box empty", "POST", "/api/region", {"box": [10, 10, 10, 20]}, 400, "box"),
    ("region box outside", "POST", "/api/region", {"box": [0, 0, 65, 20]}, 400, "box[2]"),
    ("region box not four numbers", "POST", "/api/region", {"box": [1, 2]}, 400, "box"),
    ("region box float", "POST", "/api/region", {"box": [1.5, 2, 10, 10]}, 400, "box[0]"),
    ("region probes 1", "POST", "/api/region", {"box": [1, 2, 10, 10], "probes": 1}, 400, "probes"),
    ("capture link not text", "POST", "/api/capture", {"link": {"a": 1}}, 400, "link"),
    ("edit attribute unknown", "POST", "/api/edit", {"attribute": "gallery:999"}, 400, "attribute"),
    ("edit convs not a list", "POST", "/api/edit", {"attribute": "gallery:0", "convs": "conv0"}, 400, "convs"),
    ("edit convs unknown layer", "POST", "/api/edit", {"attribute": "gallery:0", "convs": ["conv77"]}, 400, "convs"),
    ("edit gf one number", "POST", "/api/edit", {"attribute": "gallery:0", "gf": [3]}, 400, "gf"),
    ("edit gf 2.5", "POST", "/api/edit", {"attribute": "gallery:0", "gf": [2.5, 9]}, 400, "gf[0]"),
    ("model unknown", "POST", "/api/render", {"model": "ffhq-9000"}, 400, "model"),
    ("unknown request", "POST", "/api/nothing", {}, 404, None),
    ("body not JSON", "POST", "/api/render", "seed=3", 400, None),
    ("body a JSON list", "POST", "/api/render", [1, 2], 400, None),
    ("body not UTF-8", "POST", "/api/render", b"\xff\xfe{", 400, None),
    ("wrong method", "PUT", "/api/render", {}, 405, None),
    ("upload by GET", "GET", "/api/upload", None, 405, None),
    ("upload named ..", "POST", "/api/upload?align=0&name=..", NOT_AN_IMAGE, 422, "file"),
    ("upload name with a null byte", "POST", "/api/upload?align=0&name=a%00b.png", NOT_AN_IMAGE, 422, "file"),
    ("upload name of 5000 characters", "POST", "/api/upload?align=0&name=" + "n" * 5000 + ".png", NOT_AN_IMAGE,
     422, "file"),
    ("upload name with a path", "POST", "/api/upload?align=0&name=../../etc/passwd", NOT_AN_IMAGE, 422, "file"),
    ("upload empty", "POST", "/api/upload?align=0&name=a.png", b"", 400, "file"),
    ("upload align maybe", "POST", "/api/upload?align=maybe", NOT_AN_IMAGE, 400, "align"),
    ("upload unknown option", "POST", "/api/upload?colour=1", NOT_AN_IMAGE, 400, "colour"),
    ("upload for an unknown model", "POST", "/api/upload?align=0&model=nope", NOT_AN_IMAGE, 400, "model"),
]


@pytest.mark.parametrize("what, method, path, body, status, field", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_is_a_4xx_json_naming_the_field(server, what, method, path, body, status, field):
    raw = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    got, answer, text = send(server, method, path, raw, {"Content-Type": "application/json"})
    assert got == status, (what, got, text[:300])
    assert answer is not None and isinstance(answer.get("error"), str), text[:300]
    assert answer.get("field") == field, answer
    message = answer["error"]
    assert "\n" not in message and len(message) < 400 and "Traceback" not in message, message
    assert "/tmp" not in message and "upload/" not in message, message  # no server path echoed
    assert send(server, "GET", "/api/info")[0] == 200  # the server goes on


def test_too_large_upload_is_refused_before_it_is_read(server):
    host, port = urllib.parse.urlsplit(server.url).netloc.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/api/upload?align=0&name=big.png")
    connection.putheader("Content-Length", str(25 * 2**20))
    connection.endheaders()
    connection.send(b"\x89PNG" + b"\0" * 1024)  # the rest never comes: the answer must not wait for it
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 413 and answer["field"] == "file" and "limit is 20 MB" in answer["error"]


def test_good_requests_answer_200_with_ms(server):
    for endpoint, payload in [("render", {"view": {"seed": 3, "truncation": 0.7, "channels": [
            {"name": "3_5", "value": 2.0}]}}), ("fields", {"x": 3, "y": 60}), ("channel", {"name": "dS_448"}),
            ("render", {"view": {"seed": 3.0}})]:  # an integral float is an integer, not a coercion
        status, answer, text = post(server, endpoint, payload)
        assert status == 200 and "error" not in answer and answer["ms"] >= 0, text[:300]


def test_library_call_gives_the_same_errors():
    """`call` (what the tests and the benchmark use) answers as the server does, without the status."""
    from genfields.explore import Explorer, call
    from genfields.explore.api import respond

    explorer = Explorer.load("random:tiny16", "none")
    assert respond(explorer, "render", {"view": {"seed": 1.7}})[0] == 400
    assert call(explorer, "render", {"view": {"seed": True}})["field"] == "view.seed"
    assert "no editor" in call(explorer, "edit", {"attribute": "x"})["error"]
