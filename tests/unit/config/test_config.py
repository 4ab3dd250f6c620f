import pytest
import yaml

from tests.conftest import REPO
from textwae.config.loading import all_keys, load_config, load_run_config, parse_overrides
from textwae.config.schema import Config
from textwae.errors import ConfigError


def test_default_yaml_states_every_default_exactly():
    assert yaml.safe_load((REPO / "configs" / "default.yaml").read_text()) == Config().to_dict()


def test_every_shipped_config_loads():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        load_config(path)


def test_overrides_parse_yaml_values_into_nested_keys():
    assert parse_overrides(["train.max_steps=7", "data.train=[a.txt, b.txt]", "x.y=null"]) == {
        "train": {"max_steps": 7}, "data": {"train": ["a.txt", "b.txt"]}, "x": {"y": None}}


def test_overrides_apply_in_order_after_files():
    config = load_config({"train": {"max_steps": 5}}, overrides=["train.max_steps=9",
                                                                 "train.lr=1e-4"])
    assert config.train.max_steps == 9
    assert config.train.lr == pytest.approx(1e-4)


def test_int_is_accepted_where_float_is_expected():
    assert load_config(overrides=["train.lr=1"]).train.lr == 1.0


@pytest.mark.parametrize("override, named", [
    ("train.max_stpes=3", "train.max_steps"),
    ("modle.latent=gaussian", "model"),
])
def test_unknown_key_raises_with_a_suggestion(override, named):
    with pytest.raises(ConfigError, match=f"did you mean '{named}'"):
        load_config(overrides=[override])


@pytest.mark.parametrize("override", ["train.max_steps=ten", "train.max_steps=1.5",
                                      "model.tie_embeddings=3", "data.valid=5"])
def test_wrong_type_raises_naming_the_key(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        load_config(overrides=[override])


@pytest.mark.parametrize("override", ["model.latent=fuzzy", "train.batch_size=0",
                                      "data.valid_fraction=1.5", "regularizer.kernel=poly",
                                      "model.encoder_hidden_size=0",
                                      "generation.transfer_strength=-1",
                                      "generation.top_p=0", "generation.beam=0"])
def test_meaningless_values_raise(override):
    with pytest.raises(ConfigError):
        load_config(overrides=[override])


def test_override_without_equals_raises():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(overrides=["train.max_steps"])


def test_all_keys_lists_the_documented_names():
    keys = all_keys()
    for key in ["data.train", "data.valid", "data.text_field", "data.label_field",
                "train.max_steps", "train.max_time", "model.latent", "prior.components",
                "model.regularizer"]:
        assert key in keys


def test_a_run_saved_with_generation_keys_under_prior_loads_them_into_generation(tmp_path):
    saved = Config().to_dict()
    del saved["generation"]
    saved["prior"].update(transfer_strength=1.0, transfer_steps=4, sample_redraws=2)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved), encoding="utf-8")
    config = load_run_config(tmp_path / "config.yaml")
    assert (config.generation.transfer_strength, config.generation.transfer_steps,
            config.generation.sample_redraws) == (1.0, 4, 2)
    assert config.generation.temperature == Config().generation.temperature
    with pytest.raises(ConfigError, match=r"prior\.transfer_strength"):  # not in new configs
        load_config(overrides=["prior.transfer_strength=1.0"])


@pytest.mark.parametrize("regularizer, batch, memory, refused", [
    ("mmd", 1, 0, True), ("gan", 1, 0, True), ("mmd", 1, 4, False), ("mmd", 2, 0, False),
    ("kl", 1, 0, False),
])
def test_a_divergence_needs_two_codes_a_step(regularizer, batch, memory, refused):
    overrides = [f"model.regularizer={regularizer}", f"train.batch_size={batch}",
                 f"regularizer.code_memory={memory}"]
    if regularizer == "kl":
        overrides.append("model.latent=gaussian")
    if refused:
        with pytest.raises(ConfigError, match="needs at least two"):
            load_config(overrides=overrides)
    else:
        assert load_config(overrides=overrides).train.batch_size == batch


def test_unresolved_lists_the_keys_left_to_auto():
    config = load_config(overrides=["train.lr=0.001", "prior.components=2"])
    assert config.unresolved() == ["data.max_length", "tokenizer.vocab_size", "train.batch_size"]
