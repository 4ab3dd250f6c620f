"""The explorer's map figure: every held-out point once, clickable by its index."""

import pytest

from tests.conftest import toy_texts
from textwae.data.records import Example
from textwae.explore.latent_map import build_latent_map

figure = pytest.importorskip("textwae.explore.figure", reason="needs the explore extra (plotly)")


@pytest.fixture
def lmap(tiny_model):
    texts = toy_texts(20)
    texts[0] = "a <b>bold</b> & unusual unit"
    return build_latent_map(tiny_model, [Example(t, "xy"[i % 2]) for i, t in enumerate(texts)])


def points(fig):
    return [trace for trace in fig.data if trace.customdata is not None]


@pytest.mark.parametrize("colour_by, names", [
    ("mode", None), ("label", ["label x", "label y"])])
def test_every_point_appears_once_with_its_index_and_text(lmap, colour_by, names):
    fig = figure.map_figure(lmap, colour_by)
    traces = points(fig)
    indices = sorted(k for trace in traces for k in trace.customdata)
    assert indices == list(range(20))
    if names is not None:
        assert [trace.name for trace in traces] == names
    else:
        assert all(trace.name.startswith("mode ") for trace in traces)
    hover = {k: h for trace in traces for k, h in zip(trace.customdata, trace.hovertext,
                                                      strict=True)}
    assert hover[0].startswith("a &lt;b&gt;bold&lt;/b&gt; &amp; unusual unit<br>mode ")
    assert hover[1].startswith(lmap.texts[1])
    means = [trace for trace in fig.data if trace.name == "prior means"]
    assert len(means) == 1 and list(means[0].text) == lmap.mode_names


def test_marks_are_drawn_over_the_points(lmap):
    marks = figure.Marks(encoded=((0.5, 0.25), "typed"), clicked=3,
                         path=[((0.0, 0.0), "one"), ((1.0, 1.0), "two")])
    fig = figure.map_figure(lmap, "mode", marks)
    names = [trace.name for trace in fig.data]
    assert names[-3:] == ["clicked", "interpolation", "your text"]
    path = fig.data[-2]
    assert list(path.x) == [0.0, 1.0] and list(path.text) == ["1", "2"]
    assert list(fig.data[-3].x) == [float(lmap.xy[3, 0])]
