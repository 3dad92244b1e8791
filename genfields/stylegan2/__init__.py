"""StyleGAN2 with an explicit channel-wise style space S."""

from genfields.stylegan2.checkpoints import load_generator, save_generator, shipped_models
from genfields.stylegan2.config import ARCHITECTURES, GeneratorConfig, get_architecture
from genfields.stylegan2.layout import ConvLayer, StyleLayout
from genfields.stylegan2.network import Generator, seed_to_z

__all__ = ["ARCHITECTURES", "ConvLayer", "Generator", "GeneratorConfig", "StyleLayout", "get_architecture",
           "load_generator", "save_generator", "seed_to_z", "shipped_models"]
