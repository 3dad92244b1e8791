"""The trained networks of the editing pipeline.

- `MRef`: the paper's reference mapping network (Eq. 4): F_attr (or F_id ++ F_attr for the
  `concat` configuration) -> dS, a control signal added to the identity's styles S_id.
- `WMapper`: the W-space baseline in the spirit of Nitzan et al. (IDDISEN): F_id ++ F_attr ->
  a new w that replaces the identity's.
- `WDiscriminator`: the adversarial regulariser that IDDISEN needs to keep that w on the
  manifold of mapping(z).

Both generators of offsets end in a zero-initialised layer, so training starts from the
unedited image (dS = 0) or from the average w, and outputs are in units of the per-channel
standard deviation of the generated set (`scale_by_std`): one learning rate suits every channel.
"""

from __future__ import annotations

import torch
from torch import nn

from genfields.errors import ConfigError

from .config import ModelConfig


def mlp(sizes: list[int], zero_last: bool = False) -> nn.Sequential:
    """Linear layers of `sizes` with LeakyReLU(0.2) between them; the last layer optionally zero."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    if zero_last:
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


def network_input(config: ModelConfig, f_id: torch.Tensor | None, f_attr: torch.Tensor) -> torch.Tensor:
    """F_attr, or F_id ++ F_attr when the configuration concatenates them."""
    if not config.concat:
        return f_attr
    if f_id is None:
        raise ValueError("this network concatenates F_id and F_attr: give the identity embedding")
    return torch.cat([f_id, f_attr], dim=1)


class MRef(nn.Module):
    """M_ref: attribute (and identity) features -> style control signal dS [B, dim S]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.net = mlp([config.input_dim, *config.hidden, config.s_dim], zero_last=True)
        self.register_buffer("scale", torch.ones(config.s_dim))  # per-channel std of S when scale_by_std

    def forward(self, f_attr: torch.Tensor, f_id: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(network_input(self.config, f_id, f_attr)) * self.scale


class WMapper(nn.Module):
    """IDDISEN-like baseline: F_id ++ F_attr -> w [B, w_dim] (starts at the mean w of the generated set)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.net = mlp([config.input_dim, *config.hidden, config.w_dim], zero_last=True)
        self.register_buffer("offset", torch.zeros(config.w_dim))
        self.register_buffer("scale", torch.ones(config.w_dim))

    def forward(self, f_attr: torch.Tensor, f_id: torch.Tensor | None = None) -> torch.Tensor:
        return self.offset + self.net(network_input(self.config, f_id, f_attr)) * self.scale


class WDiscriminator(nn.Module):
    """w [B, w_dim] -> logit [B]: real for mapping(z), fake for the mapper's output."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.net = mlp([config.w_dim, *config.disc_hidden, 1])

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.net(w).squeeze(1)


def build_network(config: ModelConfig) -> MRef | WMapper:
    """The trained network of a configuration."""
    return MRef(config) if config.kind == "style" else WMapper(config)


def transfer_weights(src: torch.nn.Module, dst: torch.nn.Module, f_id_dim: int) -> None:
    """Copy M_ref weights into a network of the same shape, or into its F_id ++ F_attr (concat) variant,
    whose F_id columns are set to zero so that it computes the same dS."""
    source, target = src.state_dict(), dst.state_dict()
    if source.keys() != target.keys():
        raise ConfigError("cannot fine-tune across network kinds (style M_ref vs W-space mapper)")
    for key, value in source.items():
        if target[key].shape == value.shape:
            target[key] = value.clone()
        elif key == "net.0.weight" and target[key].shape[1] == value.shape[1] + f_id_dim:
            target[key] = torch.cat([torch.zeros(value.shape[0], f_id_dim), value], dim=1)
        else:
            raise ConfigError(f"cannot fine-tune: {key} has shape {list(value.shape)}, the target "
                              f"{list(target[key].shape)}")
    dst.load_state_dict(target)
