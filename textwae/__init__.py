"""textwae: text generation with a Wasserstein auto-encoder latent space and a multimodal prior.

    from textwae import TextWAE, StoryRun, DecodingConfig, sample, transfer
    model = TextWAE.from_pretrained("runs/demo")
    texts, modes = sample(model, 5, DecodingConfig(temperature=0.7), mode=2)
    stories, modes = sample(StoryRun.from_pretrained("runs/demo"), 2, DecodingConfig())
"""

from textwae.config.loading import load_config
from textwae.errors import TextWAEError
from textwae.evaluation.evaluate import evaluate
from textwae.generation import (
    DecodingConfig,
    Story,
    StoryLevel,
    encode,
    interpolate,
    reconstruct,
    sample,
    transfer,
)
from textwae.models.autoencoder import TextWAE
from textwae.models.story import StoryRun
from textwae.training.pipeline import train

__all__ = ["DecodingConfig", "Story", "StoryLevel", "StoryRun", "TextWAE", "TextWAEError",
           "encode", "evaluate", "interpolate", "load_config", "reconstruct", "sample", "train",
           "transfer"]
