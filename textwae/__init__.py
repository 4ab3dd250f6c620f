"""textwae: text generation with a Wasserstein auto-encoder latent space and a multimodal prior.

    from textwae import TextWAE, DecodingConfig, sample, transfer
    model = TextWAE.from_pretrained("runs/demo")
    texts, modes = sample(model, 5, DecodingConfig(temperature=0.7), mode=2)
"""

from textwae.config.loading import load_config
from textwae.errors import TextWAEError
from textwae.evaluation.evaluate import evaluate
from textwae.generation import (
    DecodingConfig,
    encode,
    interpolate,
    reconstruct,
    sample,
    transfer,
)
from textwae.generation.stories import (
    interpolate_stories,
    reconstruct_stories,
    sample_stories,
    transfer_stories,
)
from textwae.models.autoencoder import TextWAE
from textwae.models.story import StoryRun
from textwae.training.pipeline import train

__all__ = ["DecodingConfig", "StoryRun", "TextWAE", "TextWAEError", "encode", "evaluate",
           "interpolate", "interpolate_stories", "load_config", "reconstruct",
           "reconstruct_stories", "sample", "sample_stories", "train", "transfer",
           "transfer_stories"]
