"""Encoders: (ids, mask) -> one pooled vector per unit."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from textwae.config import ModelConfig
from textwae.tokenizer import PAD_ID


class GRUEncoder(nn.Module):
    """Bidirectional GRU; the pooled vector is both directions' last states, so padding
    never enters it (sequences are packed by length)."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim, padding_idx=PAD_ID)
        self.gru = nn.GRU(cfg.embedding_dim, cfg.hidden_size, num_layers=cfg.num_layers,
                          batch_first=True, bidirectional=True,
                          dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.dropout)
        self.output_size = 2 * cfg.hidden_size

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1).cpu()  # (B,)
        embedded = self.dropout(self.embedding(ids))  # (B, T, E)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        _, final = self.gru(packed)  # (layers * 2, B, H)
        return torch.cat([final[-2], final[-1]], dim=-1)  # (B, 2H) forward and backward


ENCODERS = {"gru": GRUEncoder}
