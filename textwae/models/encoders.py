"""Encoders: (ids, mask) -> one pooled vector per unit."""

from __future__ import annotations

import torch
import transformers
from torch import nn

from textwae.config.schema import ModelConfig
from textwae.models.pretrained import load_pretrained
from textwae.text.tokenizers import PAD_ID


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first `lengths[b]` steps, leaving its padding at the end: (B, T, ...)."""
    B, T = x.shape[:2]  # batch, time
    steps = torch.arange(T, device=x.device)[None, :]  # (1, T)
    source = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (B, T)
    return x[torch.arange(B, device=x.device)[:, None], source]


class GRUEncoder(nn.Module):
    """Bidirectional GRU; the pooled vector is both directions' states at the last real token.

    The backward direction runs over each unit reversed within its length, so padding never
    enters either state. Two plain GRUs do this faster on a CPU than one packed bidirectional
    GRU, whose backward pass re-adds a buffer the size of the whole batch at every time step.
    Each direction holds `model.encoder_hidden_size`, by default half the decoder's state:
    two directions as wide as the decoder would cost more than the whole decoder.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        size = cfg.gru_encoder_hidden_size
        self.forward_gru, self.backward_gru = (
            nn.GRU(cfg.embedding_dim, size, num_layers=cfg.num_layers, batch_first=True,
                   dropout=dropout) for _ in range(2))
        self.dropout = nn.Dropout(cfg.dropout)
        self.output_size = 2 * size

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1)  # (B,)
        embedded = self.dropout(self.embedding(ids))  # (B, T, E)
        rows = torch.arange(ids.shape[0], device=ids.device)
        forward_states, _ = self.forward_gru(embedded)  # (B, T, H)
        backward_states, _ = self.backward_gru(reverse_within_length(embedded, lengths))
        last = lengths - 1
        return torch.cat([forward_states[rows, last], backward_states[rows, last]], dim=-1)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real tokens' states: (B, T, H), (B, T) -> (B, H)."""
    weights = mask.to(hidden.dtype)[..., None]  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def first_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """State of the first token (bos, which attends to the whole unit): (B, H)."""
    return hidden[:, 0]


POOLINGS = {"mean": mean_pool, "first": first_pool}


class TransformerEncoder(nn.Module):
    """A BERT-style bidirectional encoder from `transformers`, built from the config with the
    run's vocabulary, or a local pretrained model (`model.encoder_pretrained`) that reads the
    same ids. Pad tokens are masked out of attention and out of the pooled vector."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        if cfg.encoder_pretrained is None:
            config = transformers.BertConfig(
                vocab_size=vocab_size, hidden_size=cfg.transformer_dim,
                num_hidden_layers=cfg.transformer_layers,
                num_attention_heads=cfg.transformer_heads, intermediate_size=cfg.transformer_ff,
                hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
                max_position_embeddings=cfg.transformer_positions, type_vocab_size=1,
                pad_token_id=PAD_ID)
            self.transformer = transformers.BertModel(config, add_pooling_layer=False)
        else:
            self.transformer = load_pretrained(transformers.AutoModel, cfg.encoder_pretrained,
                                               vocab_size, "model.encoder_pretrained")
            if getattr(self.transformer, "pooler", None) is not None:
                # this encoder pools itself; an unused pooler would also stall DDP, which
                # expects a gradient for every parameter
                self.transformer.pooler = None
        self.pool = POOLINGS[cfg.pooling]
        self.output_size = self.transformer.config.hidden_size

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return self.pool(hidden, mask)  # (B, T, H) -> (B, H)


ENCODERS = {"gru": GRUEncoder, "transformer": TransformerEncoder}
