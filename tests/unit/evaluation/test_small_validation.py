"""Validation of a corpus of a few texts (issue 36.6): one held-out unit has no MMD, which
needs two codes, and its loss is the reconstruction loss; two units have both."""

import math

import pytest

from tests.conftest import toy_texts
from textwae.evaluation.teacher_forced import forced_pass, prior_mmd, validation_metrics


def test_one_held_out_unit_is_validated_without_the_mmd(tiny_model):
    metrics = validation_metrics(tiny_model, tiny_model.tokenize(toy_texts(1)), None, seed=0)
    assert "mmd" not in metrics
    assert math.isfinite(metrics["recon"]) and metrics["recon"] > 0
    assert metrics["loss"] == metrics["recon"]


def test_two_held_out_units_weigh_their_mmd_into_the_loss(tiny_model):
    texts = tiny_model.tokenize(toy_texts(2))
    metrics = validation_metrics(tiny_model, texts, None, seed=0)
    codes = forced_pass(tiny_model, texts, None, seed=0).codes
    expected = prior_mmd(codes, tiny_model.prior, tiny_model.config.regularizer, seed=0)
    assert metrics["mmd"] == pytest.approx(expected)
    weight = tiny_model.config.regularizer.weight
    assert metrics["loss"] == pytest.approx(metrics["recon"] + weight * metrics["mmd"])
