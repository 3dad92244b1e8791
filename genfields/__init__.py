"""genfields: StyleGAN2 generative fields and style-space face editing."""

from genfields.errors import CheckpointError, ConfigError, GenfieldsError, UnsafePickleError
from genfields.stylegan2 import Generator, GeneratorConfig, StyleLayout, load_generator, save_generator

__version__ = "0.1.0"
__all__ = ["CheckpointError", "ConfigError", "Generator", "GeneratorConfig", "GenfieldsError", "StyleLayout",
           "UnsafePickleError", "load_generator", "save_generator"]
