"""Typed configuration: nested dataclasses, loaded from YAML and overridden by `key=value`.

Config flows one way: `configs/default.yaml` (every default) <- an experiment YAML holding only
what differs <- command-line overrides. The merged result is saved in the run directory, so a
checkpoint rebuilds without the original command line. Unknown keys and wrong types raise
`ConfigError` naming the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config key or value the user must fix."""


@dataclass
class DataConfig:
    train: str | list[str] = "data/stories.jsonl"  # path, glob, list of paths or `datasets` name
    valid: str | list[str] | None = None  # None: hold out `valid_fraction` of train
    format: str = "auto"  # auto (by extension) | text | jsonl | csv | tsv | hf
    text_field: str | list[str] = "text"  # several columns are joined with a space
    label_field: str | None = None  # optional string label column
    unit: str = "sentence"  # story: one record is one unit | sentence: split records into sentences
    valid_fraction: float = 0.05
    split_seed: int = 0  # the held-out split depends only on this and the data
    max_length: int = 48  # tokens per unit, bos/eos included; longer units are truncated
    encoding_errors: str = "strict"  # strict: non-UTF-8 bytes are an error | replace
    hf_split: str = "train"  # split read from a `datasets` name
    labeled_fraction: float = 1.0  # share of training units whose label guides the modes
    cache_dir: str | None = None  # token ids cached here as Arrow files, keyed by corpus and
    #   tokenizer, and memory-mapped on reuse; None: tokenise in memory every run
    # streaming: read data.train as a `datasets` stream, one file in memory at a time, for
    # corpora larger than memory; units are shuffled in a buffer and tokenised on the fly
    streaming: bool = False
    shuffle_buffer: int = 10000  # streaming: units the shuffle buffer holds
    stream_sample: int = 50000  # streaming: first units read to train the tokenizer, name
    #   the labels and (without data.valid) give the held-out validation units


@dataclass
class TokenizerConfig:
    type: str = "sentencepiece"
    model_type: str = "unigram"  # unigram | bpe
    vocab_size: int = 1000
    character_coverage: float = 1.0


@dataclass
class ModelConfig:
    encoder: str = "gru"
    decoder: str = "gru"
    latent: str = "deterministic"  # deterministic | gaussian
    regularizer: str = "mmd"  # mmd | gan (latent adversary) | kl (VAE baseline: gaussian latent)
    embedding_dim: int = 128
    hidden_size: int = 256  # GRU decoder state size
    encoder_hidden_size: int | None = None  # GRU encoder state per direction; None: half of
    #   hidden_size, both directions as wide as the decoder. Its cost grows about quadratically
    num_layers: int = 1
    latent_dim: int = 32
    dropout: float = 0.1
    word_dropout: float = 0.3  # share of decoder inputs replaced by unk while training
    logvar_penalty: float = 0.0  # gaussian latent: weight of sum |log sigma^2| (stops collapse)
    tie_embeddings: bool = True  # decoder output layer shares the input embedding
    # transformer parts (model.encoder / model.decoder = transformer); sizes of both
    transformer_layers: int = 4  # blocks in each transformer part
    transformer_heads: int = 4  # attention heads; must divide transformer_dim
    transformer_dim: int = 256  # model width of the transformer parts
    transformer_ff: int = 1024  # feed-forward width, usually 4 x transformer_dim
    transformer_positions: int = 512  # position table size: >= data.max_length and new tokens
    pooling: str = "mean"  # transformer encoder: mean (over real tokens) | first (token)
    z_injection: str = "both"  # transformer decoder: memory (z as one key/value prefix per
    #   layer, as Optimus) | embedding (z added to every token embedding) | both
    # local pretrained `transformers` dirs (safetensors weights; config.json alone builds the
    # architecture untrained). A dir with tokenizer files brings its own tokenizer (e.g. BERT
    # encoder + GPT-2 decoder, as Optimus); one without must read the run's SentencePiece ids
    encoder_pretrained: str | None = None  # an encoder model dir (model.encoder=transformer)
    decoder_pretrained: str | None = None  # a causal LM dir (model.decoder=transformer)

    @property
    def gru_encoder_hidden_size(self) -> int:
        """`encoder_hidden_size`, or its default when None."""
        if self.encoder_hidden_size is None:
            return self.hidden_size // 2
        return self.encoder_hidden_size


@dataclass
class PriorConfig:
    components: int = 4  # K mixture components, numbered 0..K-1
    spread: float = 4.0  # distance of each component mean from the origin
    scale: float = 1.0  # standard deviation of every component
    labels: list[str] | None = None  # label of each component, in order (label-guided modes);
    #   None: the sorted labels of data.label_field; extra components stay free
    # learnable: means, scales and weights train with the model. Use it without labels, to let
    # the data place the modes; keep the prior fixed when modes are tied to labels.
    learnable: bool = False
    min_weight: float = 0.2  # every mixture weight stays >= min_weight / K (a hard floor)
    scale_range: float = 4.0  # learnable scales stay within [scale / range, scale * range]
    min_separation: float = 0.5  # learnable means are pushed apart when closer than this
    #   share of their initial closest-pair distance
    penalty_weight: float = 1.0  # weight of that repulsion penalty in the loss


@dataclass
class RegularizerConfig:
    weight: float = 10.0  # lambda in  recon + lambda * D(Q_Z, P_Z)
    label_weight: float = 1.0  # weight of the term drawing labelled codes to their component
    kernel: str = "imq"  # imq | rbf
    scales: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0])
    adversary_hidden: int = 256  # gan: width of each hidden layer of the latent discriminator
    adversary_layers: int = 2  # gan: hidden layers of the discriminator
    adversary_lr: float = 5e-4  # gan: AdamW learning rate of the discriminator's own optimiser
    kl_anneal_steps: int = 0  # kl: steps over which the KL weight rises linearly 0 -> 1; 0: off
    free_bits: float = 0.0  # kl: nats per latent dimension the KL term leaves unpenalised


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    grad_clip: float = 1.0
    max_steps: int = 20000
    max_time: float | None = 420.0  # wall-clock budget in seconds; the schedule follows it
    eval_every: int = 500
    eval_batches: int | None = None  # None: the whole validation split
    log_every: int = 50
    checkpoint_every: int = 500
    num_threads: int | None = None  # torch intra-op threads; None: torch's default
    precision: str = "fp32"  # fp32 | bf16 (autocast of the forward on CUDA; losses stay fp32)
    grad_accumulation: int = 1  # micro-batches of batch_size per optimiser step


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


def _check_value(key: str, value: Any, annotation: Any) -> Any:
    """Return `value` converted to `annotation`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_value(key, value, option)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(annotation)}")
    if annotation is type(None):
        if value is None:
            return None
    elif origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, list):
            return [_check_value(key, item, item_type) for item in value]
    elif annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        # NaN is no setting: it passes every range check and turns the loss into NaN
        if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, annotation):
        return value
    raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(annotation)}")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _merge(target: Any, updates: dict[str, Any], prefix: str = "") -> None:
    """Apply a nested dict of updates to a dataclass instance in place, checking every key."""
    if not isinstance(updates, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {updates!r}")
    hints = typing.get_type_hints(type(target))
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(_unknown_key_message(dotted, [f"{prefix}{name}" for name in hints]))
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, prefix=f"{dotted}.")
        else:
            setattr(target, key, _check_value(dotted, value, hints[key]))


def _unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
    return f"unknown config key {key!r}{hint}"


def all_keys(config: Any | None = None, prefix: str = "") -> list[str]:
    """Every dotted leaf key of a config, e.g. 'train.max_steps'."""
    config = Config() if config is None else config
    keys = []
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            keys.extend(all_keys(value, prefix=f"{prefix}{item.name}."))
        else:
            keys.append(f"{prefix}{item.name}")
    return keys


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn ['train.max_steps=100', 'data.train=[a.txt, b.txt]'] into a nested dict.

    Values are parsed as YAML, so numbers, booleans, null and lists work as users expect.
    """
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: cannot parse value: {error}") from error
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from error
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config {path} is not valid YAML: {error}") from error
    return loaded or {}


def load_config(*sources: str | Path | dict[str, Any], overrides: list[str] = ()) -> Config:
    """Merge YAML files or dicts, in order, then `key=value` overrides, onto the defaults."""
    config = Config()
    for source in sources:
        _merge(config, source if isinstance(source, dict) else read_yaml(source))
    _merge(config, parse_overrides(list(overrides)))
    validate(config)
    return config


def _require(key: str, value: Any, choices: typing.Iterable[Any]) -> None:
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")


def _validate_transformer(config: Config) -> None:
    """Sizes of the transformer parts, checked only when a part is built from them."""
    model = config.model
    built = [part for part, name, pretrained in (
        ("encoder", model.encoder, model.encoder_pretrained),
        ("decoder", model.decoder, model.decoder_pretrained))
        if name == "transformer" and pretrained is None]
    if not built:
        return
    for key in ("transformer_layers", "transformer_heads", "transformer_dim", "transformer_ff",
                "transformer_positions"):
        if getattr(model, key) <= 0:
            raise ConfigError(f"model.{key} must be positive, got {getattr(model, key)}")
    if model.transformer_dim % model.transformer_heads:
        raise ConfigError(f"model.transformer_heads ({model.transformer_heads}) must divide "
                          f"model.transformer_dim ({model.transformer_dim})")
    if model.transformer_positions < config.data.max_length:
        raise ConfigError(f"model.transformer_positions ({model.transformer_positions}) must be "
                          f"at least data.max_length ({config.data.max_length})")


def _validate_regularizer(config: Config) -> None:
    """The (latent, regulariser) pairing, the regulariser's settings and the prior's safeguards."""
    reg, prior = config.regularizer, config.prior
    if config.model.regularizer == "kl" and config.model.latent != "gaussian":
        raise ConfigError(
            f"model.regularizer=kl (the VAE baseline) needs model.latent=gaussian, got "
            f"{config.model.latent!r}: the KL is defined for a Gaussian posterior q(z|x), "
            "not for a deterministic code; use mmd or gan for a deterministic latent")
    for key, value in {"regularizer.adversary_hidden": reg.adversary_hidden,
                       "regularizer.adversary_layers": reg.adversary_layers,
                       "regularizer.adversary_lr": reg.adversary_lr}.items():
        if not value > 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    if not prior.scale_range > 1:
        raise ConfigError(f"prior.scale_range must be greater than 1, got {prior.scale_range}")
    for key, value in {"regularizer.weight": reg.weight,
                       "regularizer.kl_anneal_steps": reg.kl_anneal_steps,
                       "regularizer.free_bits": reg.free_bits, "prior.spread": prior.spread,
                       "prior.min_separation": prior.min_separation,
                       "prior.penalty_weight": prior.penalty_weight}.items():
        if value < 0 or math.isinf(value):
            raise ConfigError(f"{key} must be finite and not negative, got {value}")
    if not 0.0 <= prior.min_weight < 1.0:
        raise ConfigError(f"prior.min_weight must lie in [0, 1), got {prior.min_weight}")
    if prior.learnable and prior.components > 1 and prior.spread == 0:
        raise ConfigError("prior.learnable with several components needs prior.spread > 0, so "
                          "that the means start apart")


def validate(config: Config) -> None:
    """Check values whose type is right but whose meaning is not."""
    _require("data.format", config.data.format, ["auto", "text", "jsonl", "csv", "tsv", "hf"])
    _require("data.unit", config.data.unit, ["story", "sentence"])
    _require("data.encoding_errors", config.data.encoding_errors, ["strict", "replace"])
    _require("tokenizer.type", config.tokenizer.type, ["sentencepiece"])
    _require("tokenizer.model_type", config.tokenizer.model_type, ["unigram", "bpe"])
    _require("model.encoder", config.model.encoder, ["gru", "transformer"])
    _require("model.decoder", config.model.decoder, ["gru", "transformer"])
    _require("model.pooling", config.model.pooling, ["mean", "first"])
    _require("model.z_injection", config.model.z_injection, ["memory", "embedding", "both"])
    _require("model.latent", config.model.latent, ["deterministic", "gaussian"])
    _require("model.regularizer", config.model.regularizer, ["mmd", "gan", "kl"])
    _require("regularizer.kernel", config.regularizer.kernel, ["imq", "rbf"])
    _require("train.precision", config.train.precision, ["fp32", "bf16"])
    if config.train.precision == "bf16" and config.train.device.split(":")[0] != "cuda":
        raise ConfigError(f"train.precision=bf16 needs a CUDA device, got train.device="
                          f"{config.train.device!r}; use train.precision=fp32 on this device")
    positive = {
        "prior.components": config.prior.components,
        "prior.scale": config.prior.scale,
        "model.latent_dim": config.model.latent_dim,
        "model.hidden_size": config.model.hidden_size,
        "model.encoder_hidden_size": config.model.gru_encoder_hidden_size,
        "tokenizer.vocab_size": config.tokenizer.vocab_size,
        "train.batch_size": config.train.batch_size,
        "train.max_steps": config.train.max_steps,
        "train.grad_accumulation": config.train.grad_accumulation,
        "data.shuffle_buffer": config.data.shuffle_buffer,
        "data.stream_sample": config.data.stream_sample,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    _validate_transformer(config)
    _validate_regularizer(config)
    if not 0.0 <= config.data.labeled_fraction <= 1.0:
        raise ConfigError("data.labeled_fraction must lie in [0, 1]")
    labels = config.prior.labels
    if labels is not None:
        if len(set(labels)) != len(labels):
            raise ConfigError(f"prior.labels has a repeated label: {labels}")
        if len(labels) > config.prior.components:
            raise ConfigError(f"prior.labels names {len(labels)} labels but prior.components is "
                              f"{config.prior.components}: every label needs its own component")
    if not 0 < config.train.lr < math.inf:
        raise ConfigError(f"train.lr must be positive and finite, got {config.train.lr}")
    if config.data.max_length < 3:
        raise ConfigError("data.max_length must be at least 3 (bos, one token, eos)")
    if not 0.0 < config.data.valid_fraction < 1.0:
        raise ConfigError("data.valid_fraction must lie strictly between 0 and 1")
    if not 0.0 <= config.model.word_dropout < 1.0:
        raise ConfigError("model.word_dropout must lie in [0, 1)")
