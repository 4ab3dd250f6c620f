"""What a latent head gives the objectives: the code, and the Gaussian posterior's parameters."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LatentOutput:
    z: torch.Tensor  # (B, D) the code the decoder sees
    mean: torch.Tensor  # (B, D) the posterior mean: z itself for a deterministic encoder
    logvar: torch.Tensor | None = None  # (B, D) Gaussian posterior only

    def float(self) -> LatentOutput:
        """In fp32 (fp32 tensors are kept as they are): losses on codes made under autocast."""
        logvar = None if self.logvar is None else self.logvar.float()
        return LatentOutput(z=self.z.float(), mean=self.mean.float(), logvar=logvar)


def logvar_penalty(logvar: torch.Tensor | None) -> torch.Tensor | float:
    """Mean over the batch of sum_d |log sigma_d^2|.

    Without it a stochastic WAE drives the variances to zero and becomes deterministic
    (Bahuleyan et al., 2019); the penalty is zero exactly at unit variance.
    """
    return 0.0 if logvar is None else logvar.abs().sum(dim=-1).mean()
