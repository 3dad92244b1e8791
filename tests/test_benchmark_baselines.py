"""The baselines that benchmarks/ times ours against compute the same images as ours."""

from __future__ import annotations

import sys

import pytest
import torch

from conftest import REPO, require_nvidia_fixture


@pytest.fixture
def plain_recipe(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import plain_recipe

    yield plain_recipe
    sys.modules.pop("plain_recipe", None)


def _styles(G, batch: int = 3):
    with torch.no_grad():
        w = G.mapping(torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0)))
        return G.styles(w), w


def test_plain_recipe_synthesises_our_images(tiny_generator, plain_recipe):
    S, w = _styles(tiny_generator)
    with torch.no_grad():
        ours = tiny_generator.synthesize(S, w)
    plain = plain_recipe.plain_runner(tiny_generator, S, w)()
    assert (plain - ours).abs().max() < 1e-5 * ours.abs().max()
    low = plain_recipe.plain_runner(tiny_generator, S, w, torch.bfloat16)()  # autocast: bfloat16's error
    assert 0 < (low - ours).abs().mean() < 0.02 * ours.abs().mean()


def test_plain_recipe_on_the_official_fixture_with_binding_clamps(plain_recipe):
    from genfields.stylegan2 import load_generator

    G = load_generator(str(require_nvidia_fixture() / "nvidia_tiny64.pkl"))
    S, w = _styles(G)
    with torch.no_grad():
        unclamped = G.synthesize(S, w)
        for layer in [*G.synthesis.conv_layers, *(block.torgb for block in G.synthesis.blocks)]:
            layer.conv_clamp = 0.5  # the fixture's 256 is never reached: make every clamp bind
        ours = G.synthesize(S, w)
    assert (ours - unclamped).abs().max() > 0.1
    assert (plain_recipe.plain_runner(G, S, w)() - ours).abs().max() < 1e-5 * ours.abs().max()
