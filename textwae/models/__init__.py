"""The networks: encoders, latent heads, decoders, pretrained parts and the whole TextWAE."""
