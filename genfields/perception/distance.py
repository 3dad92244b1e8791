"""A perceptual distance from the stages of one of our convolutional networks (LPIPS's recipe, unweighted).

Activations at the end of every stage are normalised to unit length over channels at each position;
the distance is the squared difference, averaged over positions and summed over stages (Zhang et al.
2018, without the learned per-channel weights). Used for the perceptual path length of a generator,
so the network must be one that no generator or editor is trained against: a judge.
"""

from __future__ import annotations

import torch

from .interfaces import resize_input


def stage_activations(model: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of each stage of a `SmallCNN`-based network (`model.net.trunk`, `model.config.depth`
    layers per stage) on images resized to its input resolution."""
    x = resize_input(images, model.config.input_res)
    outputs = []
    for i, layer in enumerate(model.net.trunk):
        x = layer(x)
        if (i + 1) % model.config.depth == 0:
            outputs.append(x)
    return outputs


def _unit_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


def stage_difference(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per pair [B]: the unweighted LPIPS-style distance, differentiable (a loss), compared in `dtype`."""
    total = a.new_zeros(a.shape[0], dtype=dtype)
    for fa, fb in zip(stage_activations(model, a), stage_activations(model, b)):
        diff = (_unit_channels(fa.to(dtype)) - _unit_channels(fb.to(dtype))).square().sum(dim=1)
        total = total + diff.mean(dim=(1, 2))
    return total


@torch.no_grad()
def stage_distance(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per pair [B], on the CPU: the distance as a measurement, compared in float64 (path lengths compare
    images an epsilon apart)."""
    return stage_difference(model, a, b, torch.float64).cpu()
