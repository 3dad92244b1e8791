"""genfields: StyleGAN2 generative fields and style-space face editing."""

__version__ = "0.1.0"
