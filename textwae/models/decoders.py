"""Autoregressive decoders conditioned on a code z.

Every decoder offers the same calls: `forward(ids, z)` for teacher-forced logits,
`target_nll(ids, z, targets, mask)` for the training loss, and `start(z)` / `step(tokens,
state)` for generation, so one training step and one decoding routine serve all.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import transformers
from torch import nn

from textwae.config.schema import ModelConfig
from textwae.errors import ConfigError
from textwae.models.pretrained import load_pretrained, train_regime
from textwae.text.tokenizers import BOS_ID, EOS_ID, PAD_ID

GRUState = tuple[torch.Tensor, torch.Tensor]  # (hidden (L, B, H), z (B, D))
OutputLayer = nn.Linear | nn.AdaptiveLogSoftmaxWithLoss


def inner_cutoffs(cutoffs: list[int] | None, vocab_size: int) -> list[int]:
    """The cutoffs that split the vocabulary (the others are dropped)."""
    return [cut for cut in cutoffs or [] if cut < vocab_size]


def output_layer(width: int, vocab_size: int, cutoffs: list[int] | None,
                 tied_to: nn.Embedding | None) -> OutputLayer:
    """An adaptive softmax (Grave et al., 2017) when a cutoff lies inside the vocabulary: on
    a large vocabulary a full softmax is most of a step's cost
    (docs/results.md#adaptive-softmax). Else a full softmax, whose weight is
    `tied_to`'s when given."""
    cutoffs = inner_cutoffs(cutoffs, vocab_size)
    if cutoffs:
        return nn.AdaptiveLogSoftmaxWithLoss(width, vocab_size, cutoffs, div_value=4.0)
    output = nn.Linear(width, vocab_size)
    if tied_to is not None:
        output.weight = tied_to.weight
    return output


def scores(output: OutputLayer, features: torch.Tensor) -> torch.Tensor:
    """Scores (..., V) of every token at `features` (..., E); an adaptive softmax gives its
    log-probabilities."""
    if isinstance(output, nn.Linear):
        return output(features)
    flat = output.log_prob(features.reshape(-1, features.shape[-1]))
    return flat.view(*features.shape[:-1], -1)


def output_nll(output: OutputLayer, features: torch.Tensor,
               targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood (N,) of `targets` (N,) at `features` (N, E): an adaptive
    softmax scores a rare cluster only where a target lies in it."""
    if isinstance(output, nn.Linear):
        return F.cross_entropy(output(features), targets, reduction="none")
    return -output(features, targets).output


class GRUDecoder(nn.Module):
    """z sets the initial state and is fed beside every input embedding, so the decoder
    cannot ignore it as easily as when z only starts the recurrence."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, code_dim: int | None = None) -> None:
        """`code_dim`: the width of the code it reads (None: model.latent_dim)."""
        super().__init__()
        code_dim = code_dim or cfg.latent_dim
        self.num_layers = cfg.num_layers
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        self.initial_state = nn.Linear(code_dim, cfg.num_layers * cfg.hidden_size)
        self.gru = nn.GRU(cfg.embedding_dim + code_dim, cfg.hidden_size,
                          num_layers=cfg.num_layers, batch_first=True,
                          dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.dropout)
        self.to_embedding = nn.Linear(cfg.hidden_size, cfg.embedding_dim)
        self.output = output_layer(cfg.embedding_dim, vocab_size, cfg.output_cutoffs,
                                   self.embedding if cfg.tie_embeddings else None)

    def start(self, z: torch.Tensor) -> GRUState:
        B = z.shape[0]
        hidden = torch.tanh(self.initial_state(z))  # (B, L * H)
        return hidden.view(B, self.num_layers, -1).transpose(0, 1).contiguous(), z

    def _features(self, ids: torch.Tensor,
                  state: GRUState) -> tuple[torch.Tensor, GRUState]:
        """What the output layer reads (B, T, E) at each input of `ids` (B, T)."""
        hidden, z = state
        B, T = ids.shape  # batch, time
        embedded = self.dropout(self.embedding(ids))  # (B, T, E)
        inputs = torch.cat([embedded, z[:, None, :].expand(B, T, z.shape[1])], dim=-1)
        outputs, hidden = self.gru(inputs, hidden)  # (B, T, H)
        return torch.tanh(self.to_embedding(self.dropout(outputs))), (hidden, z)

    def forward(self, ids: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for inputs `ids` (B, T)."""
        return scores(self.output, self._features(ids, self.start(z))[0])

    def target_nll(self, ids: torch.Tensor, z: torch.Tensor, targets: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced negative log-likelihood (N,) of `targets[mask]` after inputs `ids`
        (B, T). The output layer, on a large vocabulary most of a step, runs at those N
        positions only, and an adaptive softmax scores a rare cluster only where a target
        lies in it."""
        features = self._features(ids, self.start(z))[0][mask]  # (N, E)
        return output_nll(self.output, features, targets[mask])

    def step(self, tokens: torch.Tensor, state: GRUState) -> tuple[torch.Tensor, GRUState]:
        """Logits (B, V) for the next token after `tokens` (B,)."""
        features, state = self._features(tokens[:, None], state)
        return scores(self.output, features[:, 0]), state

    @staticmethod
    def reorder_state(state: GRUState, order: torch.Tensor) -> GRUState:
        """Select and repeat batch rows of the state (for beam search)."""
        hidden, z = state
        return hidden[:, order], z[order]


@dataclass
class TransformerState:
    cache: transformers.Cache  # keys/values of the z prefix (if any) and of every token so far
    z_embedding: torch.Tensor | None  # (B, E) added to each new token's embedding, if used
    position: int  # tokens seen so far: the position id of the next token


def _copy_cache(cache: transformers.Cache) -> transformers.Cache:
    """A cache that can grow without changing `cache`: dynamic layers grow by concatenation
    into new tensors, so copies of the layer objects may share the tensors themselves."""
    copied = copy.copy(cache)
    copied.layers = [copy.copy(layer) for layer in cache.layers]
    return copied


def _leave_base_out(decoder: TransformerDecoder, state: dict, prefix: str, _: dict) -> None:
    """State-dict hook: drop the LM weights that never train."""
    for name in decoder.base_names:
        state.pop(f"{prefix}lm.{name}", None)


def _keep_base(decoder: TransformerDecoder, state: dict, prefix: str, *_) -> None:
    """Load hook: the LM weights that never train keep the values read from the source."""
    if decoder.base_names:
        base = dict(decoder.lm.named_parameters(remove_duplicate=False))
        for name in decoder.base_names:
            state.setdefault(f"{prefix}lm.{name}", base[name].detach())


class TransformerDecoder(nn.Module):
    """A GPT-2 style causal LM from `transformers`, built from the config with the run's
    vocabulary or loaded from a local pretrained directory (`model.decoder_pretrained`),
    conditioned on z in the ways `model.z_injection` names:

    - memory: z is projected to one key and one value per layer and head, placed in the
      key/value cache before the first token (Optimus' scheme). Every token attends to it at
      every layer; it takes no position, so tokens keep positions 0, 1, ...
    - embedding: z is projected to the model width and added to every token embedding.

    Generation keeps the cache, so each step runs the new token only.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, code_dim: int | None = None) -> None:
        """`code_dim`: the width of the code it reads (None: model.latent_dim)."""
        super().__init__()
        code_dim = code_dim or cfg.latent_dim
        # an output layer of its own: an adaptive softmax for a decoder built here on a large
        # vocabulary; None: the LM's head (a pretrained LM keeps the head it was trained with)
        own_output = (cfg.decoder_pretrained is None and cfg.transformer_adaptive_softmax
                      and inner_cutoffs(cfg.output_cutoffs, vocab_size))
        self.output = (output_layer(cfg.transformer_dim, vocab_size, cfg.output_cutoffs, None)
                       if own_output else None)
        if cfg.decoder_pretrained is None:
            config = transformers.GPT2Config(
                vocab_size=vocab_size, n_positions=cfg.transformer_positions,
                n_embd=cfg.transformer_dim, n_layer=cfg.transformer_layers,
                n_head=cfg.transformer_heads, n_inner=cfg.transformer_ff,
                resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
                # tied, the unused LM head of an adaptive softmax adds no weights
                tie_word_embeddings=cfg.tie_embeddings or self.output is not None)
            self.lm = transformers.GPT2LMHeadModel(config)
        else:
            self.lm = train_regime(load_pretrained(
                transformers.AutoModelForCausalLM, cfg.decoder_pretrained, vocab_size,
                "model.decoder_pretrained"), cfg)
        config = self.lm.config.get_text_config(decoder=True)
        if (not isinstance(self.lm.get_output_embeddings(), nn.Linear)
                or getattr(config, "final_logit_softcapping", None)):
            raise ConfigError("model.decoder_pretrained: its logits are not a linear map of its "
                              "last hidden states, which is how textwae scores tokens")
        # the LM's weights that never train (frozen and lora regimes): left out of the state
        # dict, so a run stores what training changed and reads the base from its source
        self.base_names = ({name for name, parameter in
                            self.lm.named_parameters(remove_duplicate=False)
                            if not parameter.requires_grad}
                           if cfg.decoder_training != "full" else set())
        self.register_state_dict_post_hook(_leave_base_out)
        self.register_load_state_dict_pre_hook(_keep_base)
        width, heads = config.hidden_size, config.num_attention_heads
        self.layers = config.num_hidden_layers
        self.kv_heads = getattr(config, "num_key_value_heads", None) or heads
        self.head_dim = getattr(config, "head_dim", None) or width // heads
        self.max_positions = getattr(config, "max_position_embeddings", None)
        use_memory = cfg.z_injection in ("memory", "both")
        use_embedding = cfg.z_injection in ("embedding", "both")
        self.memory = (nn.Linear(code_dim, self.layers * 2 * self.kv_heads * self.head_dim)
                       if use_memory else None)
        self.z_to_embedding = nn.Linear(code_dim, width) if use_embedding else None
        if cfg.decoder_pretrained is not None:
            # start from the LM as it was: a random injection would add vectors far larger
            # than its token embeddings and keys, and garble what it already writes
            for injection in filter(None, (self.memory, self.z_to_embedding)):
                nn.init.zeros_(injection.weight)
                nn.init.zeros_(injection.bias)
        # the keyword naming the cache: `cache` in recent transformers, `past_key_values` before
        parameters = inspect.signature(self.lm.base_model.forward).parameters
        self._cache_keyword = "cache" if "cache" in parameters else "past_key_values"

    def _prefix(self, z: torch.Tensor) -> transformers.Cache:
        """A cache holding z's key and value at every layer, or an empty one."""
        if self.memory is None:
            return transformers.DynamicCache(config=self.lm.config)
        B = z.shape[0]
        kv = self.memory(z).view(B, self.layers, 2, self.kv_heads, 1, self.head_dim)
        return transformers.DynamicCache(  # per layer: keys, values (B, heads, 1, head_dim)
            [(kv[:, layer, 0], kv[:, layer, 1]) for layer in range(self.layers)],
            config=self.lm.config)

    @property
    def head(self) -> OutputLayer:
        """The output layer: its own adaptive softmax, or the LM's head."""
        return self.output if self.output is not None else self.lm.get_output_embeddings()

    def _features(self, ids: torch.Tensor, cache: transformers.Cache | None,
                  z_embedding: torch.Tensor | None, position: int) -> torch.Tensor:
        """Last hidden states (B, T, E) of tokens `ids` (B, T) at positions
        position..position+T-1, after whatever `cache` holds; `cache` grows by these tokens."""
        B, T = ids.shape  # batch, time
        if self.max_positions is not None and position + T > self.max_positions:
            raise ConfigError(f"the decoder has {self.max_positions} positions; {position + T} "
                              "tokens do not fit (raise model.transformer_positions)")
        embeds = self.lm.get_input_embeddings()(ids)  # (B, T, E)
        if z_embedding is not None:
            embeds = embeds + z_embedding[:, None, :]
        positions = torch.arange(position, position + T, device=ids.device).expand(B, T)
        # No attention mask: transformers sizes the causal mask by the cache, so it spans the
        # z prefix, and a padded batch is padded on the right, which causality already hides.
        return self.lm.base_model(inputs_embeds=embeds, position_ids=positions,
                                  use_cache=cache is not None,
                                  **{self._cache_keyword: cache}).last_hidden_state

    def _embed_z(self, z: torch.Tensor) -> torch.Tensor | None:
        return None if self.z_to_embedding is None else self.z_to_embedding(z)  # (B, E)

    def forward(self, ids: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for inputs `ids` (B, T)."""
        return scores(self.head, self._teacher_forced(ids, z))

    def _teacher_forced(self, ids: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        cache = self._prefix(z) if self.memory is not None else None
        return self._features(ids, cache, self._embed_z(z), 0)

    def target_nll(self, ids: torch.Tensor, z: torch.Tensor, targets: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced negative log-likelihood (N,) of `targets[mask]` after inputs `ids`
        (B, T); the output layer runs at those N positions only."""
        features = self._teacher_forced(ids, z)[mask]  # (N, E)
        return output_nll(self.head, features, targets[mask])

    def start(self, z: torch.Tensor) -> TransformerState:
        return TransformerState(self._prefix(z), self._embed_z(z), 0)

    def step(self, tokens: torch.Tensor,
             state: TransformerState) -> tuple[torch.Tensor, TransformerState]:
        """Logits (B, V) for the next token after `tokens` (B,); only the new token is run,
        and `state` stays usable (its cache is copied, not extended in place)."""
        cache = _copy_cache(state.cache)
        features = self._features(tokens[:, None], cache, state.z_embedding, state.position)
        next_state = TransformerState(cache, state.z_embedding, state.position + 1)
        return scores(self.head, features[:, 0]), next_state

    @staticmethod
    def reorder_state(state: TransformerState, order: torch.Tensor) -> TransformerState:
        """Select and repeat batch rows of the state (for beam search)."""
        cache = _copy_cache(state.cache)
        cache.reorder_cache(order)
        z_embedding = None if state.z_embedding is None else state.z_embedding[order]
        return TransformerState(cache, z_embedding, state.position)


DECODERS = {"gru": GRUDecoder, "transformer": TransformerDecoder}
