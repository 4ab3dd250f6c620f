"""The explorer page: a Gradio layout over `actions`, served on this machine only.

Everything the page loads comes from the local server: Gradio ships its frontend and
plotly.js, the theme uses system fonts, analytics are off. Each browser tab keeps its own
marks (a `gr.State`); every request that runs the model waits in one queue, so tabs share the
model one request at a time. A `TextWAEError` is shown in the page beside the control that
caused it, and the server goes on serving.

Every field reaches its handler as the request sent it (Gradio's own preprocessing is off: it
answers a crafted value with a server traceback), and the handler checks it: any JSON can
arrive, not only what the page's controls can make. `guard.RequestGuard` stands in front of
the server (Host, Origin, uploads).
"""

from __future__ import annotations

import contextlib
import html
import io
import itertools
import reprlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import gradio as gr
from starlette.middleware import Middleware

from textwae.errors import ConfigError, DataError, TextWAEError
from textwae.explore import actions
from textwae.explore.actions import Decoded, Explorer
from textwae.explore.figure import FONT, Marks, map_figure
from textwae.explore.guard import RequestGuard
from textwae.generation.decoding import DecodingConfig

MODEL_QUEUE = "model"  # the concurrency id of every request that runs the model
POINT_SAMPLES = 3  # samples decoded from a clicked point, beside its greedy text
DEFAULT_DECODING = DecodingConfig()  # the sliders start where generate.py's options do
ANSWERS = itertools.count(1)  # numbers every answer (data-answer), so a repeated one is new
MAX_SEED = 2**63 - 1  # the largest seed a torch generator takes


@dataclass(frozen=True)
class Range:
    """A slider's bounds, which also bound the value a request may send for it."""

    label: str
    low: float
    high: float
    step: float

    def slider(self, value: float, elem_id: str) -> gr.Slider:
        return gr.Slider(self.low, self.high, value=value, step=self.step, label=self.label,
                         elem_id=elem_id)

    def check(self, value: object) -> float:
        return actions.check_number(value, self.label, self.low, self.high)


TEMPERATURE = Range("temperature", 0.05, 2.0, 0.05)
TOP_P = Range("top-p", 0.05, 1.0, 0.05)
STRENGTH = Range("largest transfer strength (generate.py transfer --strength)", 0.0, 3.0, 0.1)
CODE_SCALE = Range("code scale (below 1: nearer the mode's mean)", 0.0, 1.5, 0.05)

# Gradio's plot emits no click event to Python; plotly's own plotly_click does, in the page:
# it writes the clicked point's index (and a counter, so a second click on one point is a
# change too) into a hidden textbox, whose change event decodes that point.
CLICK_BRIDGE = """
<script>
(() => {
  let clicks = 0;
  setInterval(() => {
    const plot = document.querySelector('#latent-map [data-testid="plotly"]');
    if (!plot || !plot.on || plot.dataset.textwaeBound) return;
    plot.dataset.textwaeBound = "1";
    plot.on('plotly_click', (event) => {
      const point = event.points && event.points[0];
      const box = document.querySelector('#clicked-point textarea, #clicked-point input');
      if (!point || typeof point.customdata !== 'number' || !box) return;
      clicks += 1;
      box.value = point.customdata + ':' + clicks;
      box.dispatchEvent(new Event('input', {bubbles: true}));
    });
  }, 300);
})();
</script>
"""

CSS = """
.textwae-error { border: 1px solid #d33; background: #fff4f4; color: #900; padding: 8px 10px;
                 border-radius: 6px; }
.textwae-result table { width: 100%; border-collapse: collapse; }
.textwae-result td, .textwae-result th { text-align: left; padding: 3px 6px;
                                         border-bottom: 1px solid #e5e5e5; vertical-align: top; }
.textwae-result code { font-size: 0.8em; word-break: break-all; }
"""


def theme() -> gr.themes.Base:
    """Gradio's default look in system fonts: nothing is fetched from a font server."""
    return gr.themes.Default(font=[FONT], font_mono=["ui-monospace", "DejaVu Sans Mono",
                                                     "monospace"])


def error_html(error: TextWAEError) -> str:
    return (f'<div class="textwae-error" role="alert" data-answer="{next(ANSWERS)}">'
            f"{html.escape(str(error))}</div>")


def result_html(rows: list[tuple[str, Decoded]], head: str = "", commands: list[str] = ()) -> str:
    """A table of (what, decoded text, its mode), then the command lines that print it."""
    body = "".join(f"<tr><td>{html.escape(what)}</td><td>{html.escape(row.text)}</td>"
                   f"<td>{html.escape(row.mode_name)}</td></tr>" for what, row in rows)
    lines = "".join(f"<div><code>{html.escape(line)}</code></div>" for line in commands)
    if lines:
        lines = f"<details><summary>the same from the command line</summary>{lines}</details>"
    return (f'<div class="textwae-result" data-answer="{next(ANSWERS)}">{head}<table><tr><th>'
            f"</th><th>text</th><th>mode</th></tr>{body}</table>{lines}</div>")


def build_page(explorer: Explorer) -> gr.Blocks:
    """The page's layout and its event handlers (not yet served)."""
    lmap = explorer.map
    model = explorer.model
    labels = model.config.prior.labels
    mode_choices = [(name, labels[k] if labels and k < len(labels) else str(k))
                    for k, name in enumerate(lmap.mode_names)]
    run_strength = model.config.generation.transfer_strength
    strengths = replace(STRENGTH, high=max(STRENGTH.high, run_strength))  # holds the run's own

    with gr.Blocks(title="textwae explorer", analytics_enabled=False) as page:
        marks = gr.State(Marks())
        gr.Markdown(f"## textwae latent explorer: `{html.escape(explorer.run)}`\n"
                    f"{model.prior.components} modes, {lmap.total:,} held-out units. Hover a "
                    "point to read its text; click it to decode its code.")
        with gr.Row():
            with gr.Column(scale=3):
                plot = gr.Plot(map_figure(lmap), elem_id="latent-map", show_label=False)
                colour = gr.Radio(["mode", "label"] if lmap.has_labels else ["mode"],
                                  value="mode", label="colour by", elem_id="colour-by")
                clicked = gr.Textbox(visible="hidden", elem_id="clicked-point")
            with gr.Column(scale=2):
                with gr.Accordion("Decoding", open=True):
                    greedy = gr.Checkbox(False, label="greedy", elem_id="greedy")
                    temperature = TEMPERATURE.slider(DEFAULT_DECODING.temperature,
                                                     "temperature")
                    top_p = TOP_P.slider(DEFAULT_DECODING.top_p, "top-p")
                    seed = gr.Number(0, precision=0, label="seed", elem_id="seed")
                point_out = gr.HTML("<p>Click a point on the map to decode its code.</p>",
                                    elem_id="point-output")
        with gr.Row():
            with gr.Column():
                gr.Markdown("### Encode")
                typed = gr.Textbox(label="a sentence", elem_id="encode-text")
                strength = strengths.slider(run_strength, "transfer-strength")
                encode_button = gr.Button("Encode", variant="primary", elem_id="encode-button")
                encode_out = gr.HTML(elem_id="encode-output")
            with gr.Column():
                gr.Markdown("### Interpolate")
                start = gr.Textbox(label="from", elem_id="interpolate-start")
                end = gr.Textbox(label="to", elem_id="interpolate-end")
                steps = gr.Slider(2, 20, value=5, step=1, label="steps",
                                  elem_id="interpolate-steps")
                interpolate_button = gr.Button("Interpolate", variant="primary",
                                               elem_id="interpolate-button")
                interpolate_out = gr.HTML(elem_id="interpolate-output")
            with gr.Column():
                gr.Markdown("### Sample a mode")
                mode = gr.Dropdown(mode_choices, value=mode_choices[0][1], label="mode "
                                   "(a label or an index)", allow_custom_value=True,
                                   elem_id="sample-mode")
                count = gr.Slider(1, 20, value=5, step=1, label="samples",
                                  elem_id="sample-count")
                code_scale = CODE_SCALE.slider(1.0, "code-scale")
                sample_button = gr.Button("Sample", variant="primary", elem_id="sample-button")
                sample_out = gr.HTML(elem_id="sample-output")

        decoding_inputs = [greedy, temperature, top_p, seed]

        def on_encode(text, strength, greedy, temperature, top_p, seed, colour, marks):
            found = actions.encode_text(explorer, text, _decoding(greedy, temperature, top_p),
                                        _seed(seed), strengths.check(strength))
            rows = [("reconstruction", found.reconstruction)] + [
                (f"to mode {moved.mode_name}", moved) for moved in found.transfers]
            head = f"<p>mode <b>{html.escape(found.mode_name)}</b></p>"
            marks = Marks(encoded=(found.xy, found.text), path=marks.path,
                          clicked=marks.clicked)
            return result_html(rows, head, found.commands), map_figure(lmap, colour, marks), marks

        def on_interpolate(first, last, steps, greedy, temperature, top_p, seed, colour, marks):
            path = actions.interpolate_texts(explorer, first, last, steps,
                                             _decoding(greedy, temperature, top_p), _seed(seed))
            rows = [(f"step {i + 1}", step) for i, step in enumerate(path.steps)]
            marks = Marks(encoded=marks.encoded, clicked=marks.clicked,
                          path=[(xy, step.text) for xy, step in zip(path.xy, path.steps,
                                                                    strict=True)])
            return result_html(rows, commands=[path.command]), map_figure(lmap, colour, marks), \
                marks

        def on_sample(chosen, n, scale, greedy, temperature, top_p, seed):
            drawn = actions.sample_mode(explorer, chosen, n,
                                        _decoding(greedy, temperature, top_p), _seed(seed),
                                        CODE_SCALE.check(scale))
            rows = [(f"sample {i + 1}", row) for i, row in enumerate(drawn.samples)]
            head = f"<p>from mode <b>{html.escape(drawn.mode_name)}</b></p>"
            return result_html(rows, head, [drawn.command])

        def on_click(value, greedy, temperature, top_p, seed, colour, marks):
            index = _clicked_index(value)
            point = actions.decode_point(explorer, index, POINT_SAMPLES,
                                         _decoding(greedy, temperature, top_p), _seed(seed))
            rows = [("greedy", point.greedy)] + [
                (f"sample {i + 1}", row) for i, row in enumerate(point.samples)]
            label = f", label <b>{html.escape(point.label)}</b>" if point.label else ""
            head = (f"<p>point {point.index}: {html.escape(point.text)}<br>mode "
                    f"<b>{html.escape(point.mode_name)}</b>{label}</p>")
            marks = Marks(encoded=marks.encoded, path=marks.path, clicked=index)
            return result_html(rows, head, point.commands), map_figure(lmap, colour, marks), \
                marks

        listen = {"concurrency_id": MODEL_QUEUE, "concurrency_limit": 1, "preprocess": False}
        for trigger in (encode_button.click, typed.submit):
            trigger(_shown(on_encode, 3), [typed, strength, *decoding_inputs, colour, marks],
                    [encode_out, plot, marks], api_name="encode", **listen)
        interpolate_button.click(_shown(on_interpolate, 3),
                                 [start, end, steps, *decoding_inputs, colour, marks],
                                 [interpolate_out, plot, marks], api_name="interpolate",
                                 **listen)
        sample_button.click(_shown(on_sample, 1), [mode, count, code_scale, *decoding_inputs],
                            [sample_out], api_name="sample", **listen)
        clicked.change(_shown(on_click, 3), [clicked, *decoding_inputs, colour, marks],
                       [point_out, plot, marks], api_name="decode_point", **listen)
        colour.change(lambda colour, marks: map_figure(lmap, colour, marks), [colour, marks],
                      [plot], api_name="colour", preprocess=False)
    return page


def serve(page: gr.Blocks, host: str, port: int, block: bool = True) -> None:
    """Serve the page on host:port behind `RequestGuard`, printing nothing (the command says
    where); with `block`, until Ctrl-C, then close the server.

    Uploads are refused twice: by the guard and by a file size limit of 0 bytes. No static
    file workers (GRADIO_NUM_WORKERS): they would serve on other ports, without the guard."""
    page.queue(max_size=64).launch(
        server_name=host, server_port=port, share=False, quiet=True, show_error=True,
        prevent_thread_lock=True, inbrowser=False, ssr_mode=False, mcp_server=False,
        footer_links=["settings"], run_history=False, enable_monitoring=False, pwa=False,
        theme=theme(), css=CSS, head=CLICK_BRIDGE, max_file_size=0, num_workers=0,
        app_kwargs={"middleware": [Middleware(RequestGuard, host=host)]})
    if not block:
        return
    try:
        while page.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.redirect_stdout(io.StringIO()):  # Gradio's own "Closing server ..."
            page.close()


def _decoding(greedy: object, temperature: object, top_p: object) -> DecodingConfig:
    if not isinstance(greedy, bool):
        raise ConfigError(f"greedy must be true or false, got {reprlib.repr(greedy)}")
    return actions.decoding_config(greedy, TEMPERATURE.check(temperature), TOP_P.check(top_p))


def _seed(value: object) -> int:
    """An empty seed field is seed 0."""
    return 0 if value is None else actions.check_count(value, "the seed", 0, MAX_SEED)


def _clicked_index(value: object) -> int:
    """The point index in the click bridge's 'index:clicks'."""
    head = str(value).split(":", 1)[0]
    if not head.isdecimal() or len(head) > 9:
        raise DataError(f"{reprlib.repr(value)} is not a point of the map")
    return int(head)


def _shown(handler: Callable, outputs: int) -> Callable:
    """`handler` with a user error shown in its first output, the others left as they are."""

    def run(*args):
        try:
            return handler(*args)
        except TextWAEError as error:
            if outputs == 1:
                return error_html(error)
            return (error_html(error), *(gr.skip() for _ in range(outputs - 1)))

    return run
