"""The MiniLM embedding judge of `evaluate` (the `minilm` extra): labels from sentence
embeddings, and the cosine similarity of two texts' embeddings as meaning kept."""

import warnings

import pytest

from tests.conftest import train_tiny_run
from textwae.data.splits import load_splits
from textwae.errors import ConfigError, EvaluationWarning
from textwae.evaluation import evaluate as evaluation
from textwae.evaluation.judges import EmbeddingJudge, embedding_judge_available
from textwae.models.autoencoder import TextWAE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not embedding_judge_available(),
                       reason="needs the minilm extra: pip install -e '.[dev,minilm]'"),
]

PRAISE = ["the food was great and the staff were lovely .", "best pizza in town , go there .",
          "wonderful service and a friendly owner .", "i love this place , always fresh ."]
COMPLAINT = ["the food was cold and the staff were rude .", "worst pizza ever , never again .",
             "terrible service and a grumpy owner .", "i hate this place , always stale ."]


def test_the_embedding_judge_reads_meaning_not_words():
    judge = EmbeddingJudge().fit(PRAISE + COMPLAINT, ["praise"] * 4 + ["complaint"] * 4)
    assert judge.classes == ["complaint", "praise"] and judge.train_size == 8
    assert judge.predict(["amazing dinner , we loved it .", "awful dinner , we left hungry ."]) \
        == ["praise", "complaint"]
    embeddings = judge.embed(["a", "the cat sat on the mat ."])
    assert embeddings.shape == (2, 384)
    assert abs(float((embeddings**2).sum(axis=1).max()) - 1) < 1e-5  # unit length
    cat = "the cat sat on the mat ."
    assert judge.similarity([cat], [cat]) == pytest.approx(1.0, abs=1e-5)
    assert judge.similarity([cat], ["a cat was sitting on the mat ."]) \
        > judge.similarity([cat], ["stock prices fell sharply today ."]) + 0.3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("embedding-judge"))


def test_evaluate_reports_the_embedding_judge_beside_the_tfidf_judge(run, tmp_path):
    model = TextWAE.from_pretrained(run)
    train_examples, valid = load_splits(model.config.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        off = evaluation.evaluate(model, valid, train_examples, n_samples=6,
                                  judge_cache=tmp_path, embedding_judge=False,
                                  lm_judge=False)
        on = evaluation.evaluate(model, valid, train_examples, n_samples=6,
                                 judge_cache=tmp_path, lm_judge=False)  # on: installed
    assert "embedding_judge" not in off and "embedding_accuracy" not in off["transfer"]
    assert set(on) == set(off) | {"embedding_judge"}
    judged = on["embedding_judge"]
    assert judged["model"] == "all-MiniLM-L6-v2" and judged["train_examples"] == len(
        [ex for ex in train_examples if ex.label is not None])
    assert -1 <= judged["reconstruction_similarity"] <= 1
    assert 0 <= judged["heldout_accuracy"] <= 1
    assert set(judged["mode_accuracy"]) == set(on["mode_accuracy"])  # beside the TF-IDF's
    assert 0 <= on["transfer"]["embedding_accuracy"] <= 1
    assert -1 <= on["transfer"]["embedding_similarity_to_input"] <= 1
    for key in ("bleu", "mode_accuracy", "transfer"):  # the other figures are unchanged
        if key == "transfer":
            assert {k: on[key][k] for k in off[key]} == off[key]
        else:
            assert on[key] == off[key]


def test_asking_for_the_embedding_judge_without_the_extra_names_it(run, monkeypatch):
    monkeypatch.setattr(evaluation, "embedding_judge_available", lambda: False)
    model = TextWAE.from_pretrained(run)
    train_examples, valid = load_splits(model.config.data)
    with pytest.raises(ConfigError, match=r"pip install 'textwae\[minilm\]'"):
        evaluation.evaluate(model, valid, train_examples, n_samples=2, embedding_judge=True,
                            lm_judge=False)
