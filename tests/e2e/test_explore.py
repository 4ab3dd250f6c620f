"""`textwae explore`: the command's user errors, and the page driven in headless Chromium.

The browser tests start `python -m textwae explore` on a free port over a tiny trained run
(or over the run in $TEXTWAE_EXPLORE_RUN, to time a real model), drive Debian's chromium
through chromium-driver and selenium, and compare what the page shows with what the
generation API (and so the CLI) prints for the same settings. They print the page's response
times. They skip only where chromium or chromium-driver is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import REPO, train_tiny_run
from textwae import generation
from textwae.cli.main import main
from textwae.data.splits import load_splits
from textwae.explore.actions import decoding_config
from textwae.models.autoencoder import TextWAE

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,1600"]
PAGE_DECODING = decoding_config(greedy=False, temperature=0.7, top_p=0.9)  # the page's default
SERVER_START = 180  # seconds the server may take to load the model and map the codes
ANSWER_WAIT = 120  # seconds an answer may take
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
TIMED_REPEATS = 2  # each timed request is made this many more times
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "ftp"}  # not data:, blob:, chrome: ...


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def plain(text: str) -> str:
    return " ".join(text.split())  # as the page renders it


# --- the command, without a browser ----------------------------------------------------------

def test_a_missing_extra_is_one_line_naming_it(monkeypatch, capfd):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` fails as if absent
    for module in ("textwae.explore.page", "textwae.explore.figure"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    with pytest.raises(SystemExit) as stopped:
        main(["explore", "--model", "/nonexistent/run", "--port", str(free_port())])
    assert stopped.value.code == 2
    assert capfd.readouterr().err == \
        "error: the explorer needs its extra: pip install 'textwae[explore]'\n"
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"  # set before gradio's import


def test_a_port_in_use_is_one_line(capfd):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            main(["explore", "--model", "/nonexistent/run", "--port", str(port)])
    assert stopped.value.code == 2
    assert capfd.readouterr().err == (f"error: port {port} on 127.0.0.1 is in use: pick "
                                      "another with --port\n")


# --- the page in a browser ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def explore_run(tmp_path_factory) -> Path:
    given = os.environ.get("TEXTWAE_EXPLORE_RUN")
    return Path(given) if given else train_tiny_run(tmp_path_factory.mktemp("explore"))


@pytest.fixture(scope="module")
def model(explore_run) -> TextWAE:
    return TextWAE.from_pretrained(explore_run)


@pytest.fixture(scope="module")
def server(explore_run, tmp_path_factory):
    """`python -m textwae explore` on a free port; its URL once the page answers."""
    port = free_port()
    log = tmp_path_factory.mktemp("explore_server") / "stderr.txt"
    # one thread, as this test process has: the page's texts then match its own exactly
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "textwae", "explore", "--model", str(explore_run),
             "--port", str(port)], cwd=REPO, env=env, stdout=stderr, stderr=stderr)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START
        while True:
            assert process.poll() is None, f"the server stopped: {log.read_text()}"
            assert time.monotonic() < deadline, f"no page after {SERVER_START} s: {log.read_text()}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("the browser tests need Debian's chromium and chromium-driver: "
                    "apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="textwae-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """One browser tab on the explorer, with the waits the tests need."""

    def __init__(self, driver, url: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.By = driver, By
        self.wait = WebDriverWait(driver, ANSWER_WAIT, poll_frequency=0.01)
        self.requested: set[str] = set()
        driver.get(url)
        WebDriverWait(driver, SERVER_START).until(lambda d: self.points())

    def find(self, selector: str):
        return self.driver.find_element(self.By.CSS_SELECTOR, selector)

    def points(self):
        return self.driver.find_elements(self.By.CSS_SELECTOR,
                                         "#latent-map .scatterlayer .trace path.point")

    def type(self, elem_id: str, text: str, enter: bool = False) -> None:
        from selenium.webdriver.common.keys import Keys

        box = self.find(f"#{elem_id} textarea, #{elem_id} input")
        box.clear()
        if len(text) > 200:  # a key event per character would take minutes
            self.driver.execute_script("arguments[0].value = arguments[1]; arguments[0]"
                                       ".dispatchEvent(new Event('input', {bubbles: true}))",
                                       box, text)
        else:
            box.send_keys(text + (Keys.ENTER if enter else ""))

    def answer_number(self, output: str) -> str | None:
        found = self.driver.find_elements(self.By.CSS_SELECTOR, f"#{output} [data-answer]")
        return found[0].get_attribute("data-answer") if found else None

    def ask(self, button: str, output: str) -> tuple[str, str | None, float]:
        """Click `button`; what `answer` waits on for its answer in `output`."""
        asked = output, self.answer_number(output), time.perf_counter()
        self.find(f"#{button}").click()
        return asked

    def answer(self, button: str | None, output: str,
               asked: tuple[str, str | None, float] | None = None) -> tuple[str, bool, float]:
        """Click `button` (or take what `ask` clicked) and wait for a new answer in `output`:
        its text, whether it is an error, and the seconds it took."""
        output, before, started = asked or self.ask(button, output)
        self.wait.until(lambda d: self.answer_number(output) not in (None, before))
        took = time.perf_counter() - started
        shown = self.find(f"#{output} [data-answer]")
        return shown.text, "textwae-error" in shown.get_attribute("class"), took

    def traces(self) -> dict[str, int]:
        """The map's traces: name -> number of points."""
        return self.driver.execute_script(
            "const plot = document.querySelector('#latent-map [data-testid=\"plotly\"]');"
            "return Object.fromEntries(plot.data.map(t => [t.name, t.x.length]));")

    def drain_requests(self) -> set[str]:
        """Every URL this browser has requested since the last call."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                self.requested.add(params["request"]["url"])
            elif message["method"] == "Network.webSocketCreated":
                self.requested.add(params["url"])
        return self.requested


def assert_only_local(urls: set[str]) -> None:
    outside = sorted(url for url in urls if urlsplit(url).scheme in NETWORK_SCHEMES
                     and urlsplit(url).hostname not in LOCAL_HOSTS)
    assert not outside, f"the page requested addresses outside this machine: {outside}"
    assert any(urlsplit(url).hostname == "127.0.0.1" for url in urls)


@pytest.mark.slow
def test_the_page_shows_what_the_cli_prints_and_loads_nothing_from_outside(
        server, browser, model, capsys):
    page = Page(browser, server)
    sentence, first, last = ("anna went to the busy park .", "ben went to the calm cafe .",
                             "cora went to the bright museum .")
    page.type("encode-text", sentence)
    shown, failed, encode_s = page.answer("encode-button", "encode-output")
    assert not failed, shown
    texts, _ = generation.reconstruct(model, [sentence], PAGE_DECODING)
    assert plain(texts[0]) in plain(shown)
    mode = int(model.prior.assign(generation.encode(model, [sentence]).mean)[0])
    for target in range(model.prior.components):
        if target != mode:
            moved, _ = generation.transfer(model, [sentence], target, PAGE_DECODING)
            assert plain(moved[0]) in plain(shown)
    assert page.traces()["your text"] == 1  # marked on the map

    page.type("interpolate-start", first)
    page.type("interpolate-end", last)
    shown, failed, interpolate_s = page.answer("interpolate-button", "interpolate-output")
    assert not failed, shown
    path, _ = generation.interpolate(model, first, last, 5, PAGE_DECODING)
    assert all(plain(step) in plain(shown) for step in path)
    assert "step 5" in shown and "step 6" not in shown
    assert page.traces()["interpolation"] == 5 and page.traces()["your text"] == 1

    shown, failed, sample_s = page.answer("sample-button", "sample-output")
    assert not failed, shown
    samples, _ = generation.sample(model, 5, PAGE_DECODING, mode=0)
    assert all(plain(text) in plain(shown) for text in samples)

    times = {"encode": [encode_s], "interpolate (5 steps)": [interpolate_s],
             "sample (5)": [sample_s]}
    for _ in range(TIMED_REPEATS):  # the same requests again: the first ones warm things up
        for what, button, output in [("encode", "encode-button", "encode-output"),
                                     ("interpolate (5 steps)", "interpolate-button",
                                      "interpolate-output"),
                                     ("sample (5)", "sample-button", "sample-output")]:
            times[what].append(page.answer(button, output)[2])
    assert_only_local(page.drain_requests())
    mapped = sum(n for name, n in page.traces().items() if name.startswith(("mode ", "label ")))
    with capsys.disabled():
        print(f"\nexplorer response times in the browser, first / median of "
              f"{TIMED_REPEATS + 1} ({mapped} held-out units on the map): " + ", ".join(
                  f"{what} {took[0]:.2f} / {statistics.median(took):.2f} s"
                  for what, took in times.items()))


@pytest.mark.slow
def test_hovering_a_point_shows_its_text_and_clicking_decodes_it(server, browser, model):
    from selenium.webdriver.common.action_chains import ActionChains

    page = Page(browser, server)
    held_out = {plain(unit.text) for unit in load_splits(model.config.data)[1]}
    for point in page.points()[:10]:  # the first whose hover is a unit's (not a prior mean's)
        ActionChains(browser).move_to_element(point).perform()
        page.wait.until(lambda d: page.driver.find_elements(
            page.By.CSS_SELECTOR, "#latent-map .hoverlayer .hovertext"))
        hover = plain(page.find("#latent-map .hoverlayer .hovertext").text)
        text = next((unit for unit in held_out if hover.startswith(unit)), None)
        if text is not None:
            break
    assert text is not None, f"no hover text is a held-out unit's: {hover!r}"
    asked = "point-output", page.answer_number("point-output"), time.perf_counter()
    ActionChains(browser).move_to_element(point).click().perform()
    shown, failed, _ = page.answer(None, "point-output", asked)
    assert not failed, shown
    greedy, _ = generation.reconstruct(model, [text], decoding_config(True, 1.0, 1.0))
    assert text in plain(shown) and f"greedy {plain(greedy[0])}" in plain(shown)
    assert page.traces()["clicked"] == 1
    assert_only_local(page.drain_requests())


@pytest.mark.slow
def test_bad_input_shows_a_message_and_the_server_keeps_serving(server, browser):
    page = Page(browser, server)
    page.type("encode-text", "   ")
    shown, failed, _ = page.answer("encode-button", "encode-output")
    assert failed and "the text is empty" in shown
    page.type("encode-text", "x" * 10_000)
    shown, failed, _ = page.answer("encode-button", "encode-output")
    assert failed and "10,000 characters long" in shown
    page.type("sample-mode", "no such mode", enter=True)
    shown, failed, _ = page.answer("sample-button", "sample-output")
    assert failed and "'no such mode' is neither a label nor a component index" in shown
    page.type("sample-mode", "1", enter=True)
    shown, failed, _ = page.answer("sample-button", "sample-output")
    assert not failed and "from mode 1" in shown
    page.type("encode-text", "anna went to the park .")
    shown, failed, _ = page.answer("encode-button", "encode-output")
    assert not failed and "reconstruction" in shown
    assert_only_local(page.drain_requests())


@pytest.mark.slow
def test_two_tabs_at_once_keep_their_own_marks(server, browser, model):
    first = Page(browser, server)
    first_tab = browser.current_window_handle
    first.type("encode-text", "anna went to the park .")
    first.answer("encode-button", "encode-output")
    browser.switch_to.new_window("tab")
    second = Page(browser, server)
    second.type("interpolate-start", "ben went to the cafe .")
    second.type("interpolate-end", "cora went to the museum .")
    path_asked = second.ask("interpolate-button", "interpolate-output")
    browser.switch_to.window(first_tab)  # both tabs' requests in the queue at once
    shown, failed, _ = first.answer("sample-button", "sample-output")
    assert not failed and "sample 5" in shown
    assert "your text" in first.traces() and "interpolation" not in first.traces()
    browser.switch_to.window(browser.window_handles[-1])
    shown, failed, _ = second.answer(None, "interpolate-output", path_asked)
    assert not failed and "step 5" in shown
    assert "interpolation" in second.traces() and "your text" not in second.traces()
    assert_only_local(second.drain_requests())
