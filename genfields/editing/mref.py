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

Options (`ModelConfig`): `train_attributes` holds a trainable copy of E_attr (`attr_encoder`, started
from the perception network `attr_network`, its batch-norm statistics frozen) that computes F_attr,
as IDDISEN trains its attribute encoder; `identity_input` feeds M_ref the identity's own
F_attr(I_id) or S_id (standardised) as well, so that dS can depend on the identity (beyond the paper).
"""

from __future__ import annotations

import dataclasses

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


def network_input(config: ModelConfig, f_id: torch.Tensor | None, f_attr: torch.Tensor,
                  own: torch.Tensor | None = None) -> torch.Tensor:
    """F_attr, or F_id ++ F_attr when the configuration concatenates them, then ++ the identity's own
    features (F_attr(I_id) or standardised S_id) when it has an identity input."""
    parts = [f_attr]
    if config.concat:
        if f_id is None:
            raise ValueError("this network concatenates F_id and F_attr: give the identity embedding")
        parts.insert(0, f_id)
    if config.identity_input != "none":
        if own is None:
            raise ValueError(f"this network also sees the identity's {config.identity_input}: give it")
        parts.append(own)
    return torch.cat(parts, dim=1) if len(parts) > 1 else f_attr


class AttributeEncoderHolder(nn.Module):
    """Base of the trained networks: an optional trainable E_attr copy whose batch norm stays in eval mode."""

    def _build_attribute_encoder(self, config: ModelConfig) -> None:
        self.attr_encoder = None
        if config.train_attributes:
            from genfields.perception import load_network

            if not config.attr_network:
                raise ConfigError("train_attributes needs the name of the attribute network to start from")
            self.attr_encoder = load_network(config.attr_network).requires_grad_(True)

    def train(self, mode: bool = True) -> "AttributeEncoderHolder":
        super().train(mode)
        if self.attr_encoder is not None:
            self.attr_encoder.eval()  # fine-tuned weights, fixed normalisation statistics
        return self


class MRef(AttributeEncoderHolder):
    """M_ref: attribute (and identity) features -> style control signal dS [B, dim S]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.net = mlp([config.input_dim, *config.hidden, config.s_dim], zero_last=True)
        self.register_buffer("scale", torch.ones(config.s_dim))  # per-channel std of S when scale_by_std
        if config.identity_input == "styles":  # S_id is standardised with the generated set's statistics
            self.register_buffer("style_mean", torch.zeros(config.s_dim))
            self.register_buffer("style_std", torch.ones(config.s_dim))
        self._build_attribute_encoder(config)

    def forward(self, f_attr: torch.Tensor, f_id: torch.Tensor | None = None,
                own: torch.Tensor | None = None) -> torch.Tensor:
        """dS from F_attr (and F_id with `concat`; `own` = F_attr(I_id) or S_id with an identity input)."""
        if self.config.identity_input == "styles" and own is not None:
            own = (own - self.style_mean) / self.style_std
        return self.net(network_input(self.config, f_id, f_attr, own)) * self.scale


class WMapper(AttributeEncoderHolder):
    """IDDISEN-like baseline: F_id ++ F_attr -> w [B, w_dim] (starts at the mean w of the generated set)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.net = mlp([config.input_dim, *config.hidden, config.w_dim], zero_last=True)
        self.register_buffer("offset", torch.zeros(config.w_dim))
        self.register_buffer("scale", torch.ones(config.w_dim))
        self._build_attribute_encoder(config)

    def forward(self, f_attr: torch.Tensor, f_id: torch.Tensor | None = None,
                own: torch.Tensor | None = None) -> torch.Tensor:
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


def _input_blocks(config: ModelConfig) -> dict[str, tuple[int, int]]:
    """Name -> (first column, width) of each part of the network's input (see `network_input`)."""
    widths = ([("f_id", config.f_id_dim)] if config.concat else []) + [("f_attr", config.f_attr_dim)]
    widths += [(f"own:{config.identity_input}", config.identity_dim)] if config.identity_dim else []
    blocks, at = {}, 0
    for name, width in widths:
        blocks[name] = (at, width)
        at += width
    return blocks


def transfer_weights(src: torch.nn.Module, dst: torch.nn.Module, f_id_dim: int) -> None:
    """Copy trained weights into a network of the same kind whose input may have more parts: the
    concat variant (F_id ++ F_attr) or an identity input (F_attr(I_id) or S_id) beyond the paper. The
    new input columns start at zero, so the target computes the same output as the source; a trainable
    E_attr copy or S statistics the source lacks keep their starting values."""
    source, target = src.state_dict(), dst.state_dict()
    own_only = ("attr_encoder.", "style_mean", "style_std")  # target parts with their own starting values
    if set(source) - set(target) or {k for k in set(target) - set(source) if not k.startswith(own_only)}:
        raise ConfigError("cannot fine-tune across network kinds or identity inputs (style M_ref vs W-space "
                          "mapper, S_id vs F_attr(I_id))")
    for key, value in source.items():
        if target[key].shape == value.shape and (key != "net.0.weight" or _same_inputs(src, dst)):
            target[key] = value.clone()
        elif key == "net.0.weight" and value.shape[0] == target[key].shape[0]:
            target[key] = _widened_input(value, src.config, dst.config, f_id_dim)
        else:
            raise ConfigError(f"cannot fine-tune: {key} has shape {list(value.shape)}, the target "
                              f"{list(target[key].shape)}")
    dst.load_state_dict(target)


def _same_inputs(src: nn.Module, dst: nn.Module) -> bool:
    return _input_blocks(src.config) == _input_blocks(dst.config)


def _widened_input(weight: torch.Tensor, src: ModelConfig, dst: ModelConfig, f_id_dim: int) -> torch.Tensor:
    """The first layer's weights for the target's input: the source's blocks copied, new blocks zero."""
    src_blocks = _input_blocks(dataclasses.replace(src, f_id_dim=f_id_dim))
    dst_blocks = _input_blocks(dataclasses.replace(dst, f_id_dim=f_id_dim))
    missing = [name for name in src_blocks if dst_blocks.get(name, (0, -1))[1] != src_blocks[name][1]]
    if missing:
        raise ConfigError(f"cannot fine-tune: the target has no input {', '.join(missing)} of the source's width")
    out = weight.new_zeros(weight.shape[0], sum(w for _, w in dst_blocks.values()))
    for name, (at, width) in src_blocks.items():
        to = dst_blocks[name][0]
        out[:, to:to + width] = weight[:, at:at + width]
    return out
