"""The explorer's web surface under hostile requests (issue 36, item 2), over HTTP against a
served page: a DNS-rebinding Host, a cross-site POST, an upload, crafted field values, a label
written as HTML, and a --host that reaches beyond this machine.

The page is served in this process over a tiny untrained model (what it decodes does not
matter here, only how requests are answered).
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import socket

import httpx
import pytest
import torch

from tests.conftest import TINY, toy_texts
from textwae.cli.main import main
from textwae.config.loading import load_config
from textwae.data.records import Example
from textwae.explore.actions import Explorer
from textwae.explore.latent_map import build_latent_map
from textwae.models.autoencoder import TextWAE
from textwae.text.tokenizers import Tokenizer

page_module = pytest.importorskip("textwae.explore.page", reason="needs the explore extra")
figure_module = pytest.importorskip("textwae.explore.figure", reason="needs the explore extra")

HOSTILE_LABEL = "<b onmouseover=alert(2)>praise</b>"
SECRET = "cora kept the secret held-out line ."  # a held-out text the page must not leak
EVIL = "evil.example"
ANSWER_WAIT = 120  # seconds an answer may take


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def explorer(tmp_path_factory) -> Explorer:
    corpus = tmp_path_factory.mktemp("hostile_web") / "corpus.txt"
    corpus.write_text("\n".join(toy_texts()) + "\n", encoding="utf-8")
    config = load_config(TINY, overrides=[f"data.train={corpus}",
                                          f"prior.labels=['{HOSTILE_LABEL}', b, c]"])
    torch.manual_seed(0)
    model = TextWAE(config, Tokenizer.train(toy_texts(), config.tokenizer))
    texts = [SECRET, *toy_texts(29)]
    examples = [Example(text, [HOSTILE_LABEL, "b", "c"][i % 3]) for i, text in enumerate(texts)]
    return Explorer(model, build_latent_map(model, examples), "runs/tiny")


@pytest.fixture(scope="module")
def base(explorer):
    """The page served on 127.0.0.1 in this process; its base URL."""
    page = page_module.build_page(explorer)
    port = free_port()
    page_module.serve(page, "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        page.close()


def own_origin(base: str) -> dict[str, str]:
    return {"Origin": base}


def call(base: str, api: str, data: list, **headers: str) -> httpx.Response:
    """POST an event as Gradio's client does (JSON that may hold NaN and Infinity)."""
    return httpx.post(f"{base}/gradio_api/call/{api}", content=json.dumps({"data": data}),
                      headers={"content-type": "application/json", **headers},
                      timeout=ANSWER_WAIT)


def answer(base: str, api: str, data: list) -> str:
    """The page's answer (its first output) to an event sent from the page's own origin."""
    posted = call(base, api, data, **own_origin(base))
    assert posted.status_code == 200, posted.text
    stream = httpx.get(f"{base}/gradio_api/call/{api}/{posted.json()['event_id']}",
                       timeout=ANSWER_WAIT).text
    event, _, data_line = stream.strip().partition("\n")
    assert event == "event: complete", stream  # answered, not Gradio's generic error
    return json.loads(data_line.removeprefix("data: "))[0]


SAMPLE = ["0", 2, 1.0, False, 0.7, 0.9, 0]  # mode, count, code scale, greedy, temp, top-p, seed


# -- Host: a DNS-rebinding page sends its own name -----------------------------------------------

def test_a_foreign_host_is_refused_and_the_served_names_answer(base):
    port = base.rsplit(":", 1)[1]
    for path in ("/", "/config", "/gradio_api/info"):
        refused = httpx.get(base + path, headers={"Host": f"{EVIL}:{port}"})
        assert refused.status_code == 400
        assert SECRET not in refused.text
    refused = call(base, "sample", SAMPLE, Host=f"{EVIL}:{port}", Origin=f"http://{EVIL}:{port}")
    assert refused.status_code == 400
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        served = httpx.get(base + "/config", headers={"Host": host})
        assert served.status_code == 200 and SECRET in served.text


def test_a_wildcard_bind_answers_addresses_but_not_foreign_names():
    guard = page_module.RequestGuard(app=None, host="0.0.0.0")

    def refusal(host):
        return guard.refusal({"type": "http", "method": "GET", "path": "/",
                              "headers": [(b"host", host.encode())]})

    assert refusal("192.168.1.7:7860") is None and refusal("[fe80::1]:7860") is None
    assert refusal(f"{socket.gethostname()}:7860") is None
    assert refusal(f"{EVIL}:7860")[0] == 400
    assert refusal("")[0] == 400  # no Host at all


# -- Origin: a cross-site POST ------------------------------------------------------------------

@pytest.mark.parametrize("origin", [f"http://{EVIL}", "null", "http://127.0.0.1:1"])
def test_a_state_changing_request_from_another_origin_is_refused(base, origin):
    refused = call(base, "sample", SAMPLE, Origin=origin)
    assert refused.status_code == 403
    assert "event_id" not in refused.text


def test_a_websocket_from_another_origin_is_closed_before_it_opens():
    sent = []

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):
        raise AssertionError("the guard let a cross-site websocket through")

    guard = page_module.RequestGuard(app=app, host="127.0.0.1")
    scope = {"type": "websocket", "path": "/", "headers": [
        (b"host", b"127.0.0.1:7860"), (b"origin", f"http://{EVIL}".encode())]}
    asyncio.run(guard(scope, None, send))
    assert [message["type"] for message in sent] == ["websocket.close"]


def test_the_pages_own_origin_and_a_client_without_one_are_served(base):
    assert "textwae-result" in answer(base, "sample", SAMPLE)
    assert call(base, "sample", SAMPLE).status_code == 200  # curl, a script: no Origin


# -- uploads: the page takes none -----------------------------------------------------------------

def test_an_upload_is_refused(base):
    for headers in ({}, own_origin(base), {"Origin": f"http://{EVIL}"}):
        refused = httpx.post(f"{base}/gradio_api/upload", headers=headers,
                             files={"files": ("payload.bin", b"x" * 4096)})
        assert refused.status_code == 403
        assert "no uploads" in refused.text


# -- field values a request can hold and the page's controls cannot make -----------------------

@pytest.mark.parametrize("api, data, message", [
    ("sample", ["0", 2, 1.0, False, math.nan, 0.9, 0], "temperature must be a number from"),
    ("sample", ["0", 2, 1.0, False, 1e30, 0.9, 0], "temperature must be a number from"),
    ("sample", ["0", 2, 1.0, False, 0.7, math.inf, 0], "top-p must be a number from"),
    ("sample", ["0", 2, 1e30, False, 0.7, 0.9, 0], "code scale"),
    ("sample", ["0", 2, 1.0, False, 0.7, 0.9, math.nan], "the seed must be a whole number"),
    ("sample", ["0", 2, 1.0, False, 0.7, 0.9, 1e30], "the seed must be a whole number"),
    ("sample", ["0", 2, 1.0, False, 0.7, 0.9, -1], "the seed must be a whole number"),
    ("sample", ["0", "abc", 1.0, False, 0.7, 0.9, 0], "the number of samples must be"),
    ("sample", ["0", 1e9, 1.0, False, 0.7, 0.9, 0], "the number of samples must be"),
    ("sample", ["0", 2, 1.0, "yes", 0.7, 0.9, 0], "greedy must be true or false"),
    ("sample", ["99", 2, 1.0, False, 0.7, 0.9, 0], "mode"),
    ("interpolate", ["a", "b", -3, False, 0.7, 0.9, 0, "mode"],
     "the number of steps must be"),
    ("encode", ["anna went home .", 1e30, False, 0.7, 0.9, 0, "mode"],
     "largest transfer strength"),
    ("encode", [5, 1.0, False, 0.7, 0.9, 0, "mode"], "the text must be text"),
    ("decode_point", ["abc:1", False, 0.7, 0.9, 0, "mode"], "is not a point of the map"),
    ("decode_point", ["99999:1", False, 0.7, 0.9, 0, "mode"], "there is no point 99999"),
])
def test_a_crafted_field_value_is_answered_on_the_page_without_a_traceback(
        base, capfd, api, data, message):
    shown = answer(base, api, data)
    assert shown.startswith('<div class="textwae-error"') and message in shown
    assert "Traceback" not in capfd.readouterr().err
    assert "textwae-result" in answer(base, "sample", SAMPLE)  # and the server goes on


# -- user strings in the figure -------------------------------------------------------------------

def strings_shown(traces: list[dict]) -> list[str]:
    """What plotly renders as (pseudo-)HTML: each trace's name and text labels."""
    return [trace["name"] for trace in traces] + [
        text for trace in traces for text in trace.get("text", ())]


def test_a_label_written_as_html_is_shown_as_text_in_the_legend(explorer, base):
    escaped = html.escape(HOSTILE_LABEL)
    for colour_by in ("mode", "label"):
        figure = figure_module.map_figure(explorer.map, colour_by)
        shown = strings_shown(figure.to_plotly_json()["data"])
        assert not any("<" in text for text in shown)
        assert any(escaped in text for text in shown)
    config = httpx.get(f"{base}/config").json()  # the figure as the browser receives it
    plot = next(component for component in config["components"]
                if component.get("props", {}).get("elem_id") == "latent-map")
    shown = strings_shown(json.loads(plot["props"]["value"]["plot"])["data"])
    assert not any("<" in text for text in shown)
    assert any(escaped in text for text in shown)


# -- binding beyond this machine ------------------------------------------------------------------

@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("127.0.0.1", False),
                                          ("localhost", False)])
def test_a_host_beyond_loopback_is_warned_of_in_one_line(capfd, host, warned, tmp_path):
    with pytest.raises(SystemExit) as stopped:  # the run is missing: the command stops there
        main(["explore", "--model", str(tmp_path / "missing"), "--host", host,
              "--port", str(free_port())])
    assert stopped.value.code == 2
    lines = capfd.readouterr().err.splitlines()
    assert lines[-1].startswith("error: ")
    if warned:
        assert len(lines) == 2
        assert lines[0].startswith(f"warning: --host {host} serves the explorer beyond this "
                                   "machine: it has no login")
    else:
        assert len(lines) == 1
