"""The generator: fast path against the per-sample-weight reference, noise, truncation, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genfields.errors import ConfigError
from genfields.stylegan2 import Generator, seed_to_z
from genfields.stylegan2.reference import reference_synthesize


@pytest.mark.parametrize("arch", ["tiny16", "synth64"])
@pytest.mark.parametrize("batch", [3, 1])  # batch 1: the layers whose weights outnumber the input fold the styles
def test_fast_synthesis_matches_the_per_sample_weight_reference(arch, batch):
    G = Generator.from_arch(arch, seed=2)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.add_(0.1 * torch.randn_like(p))
        w = G.mapping(torch.randn(batch, G.z_dim))
        S = G.styles(w)
        fast = G.synthesize(S, w=w, noise_mode="const")
    ref = reference_synthesize(G, S, w)
    assert (fast - ref).abs().max() < 1e-4 * max(1.0, ref.abs().max().item())


def test_editing_s_changes_only_through_s(tiny_generator):
    G = tiny_generator
    with torch.no_grad():
        w = G.mapping(torch.randn(2, G.z_dim))
        S = G.styles(w)
        base = G.synthesize(S, w=w)
        dS = torch.zeros_like(S)
        assert torch.equal(G.synthesize(S + dS, w=w), base)
        dS[:, G.layout.layer("conv2").slice] = 1.0
        assert not torch.allclose(G.synthesize(S + dS, w=w), base)


def test_noise_modes(tiny_generator):
    G = tiny_generator
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        const = G(z, noise_mode="const")
        none = G(z, noise_mode="none")
        r1 = G(z, noise_mode="random", noise_generator=torch.Generator().manual_seed(1))
        r2 = G(z, noise_mode="random", noise_generator=torch.Generator().manual_seed(1))
        r3 = G(z, noise_mode="random", noise_generator=torch.Generator().manual_seed(2))
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert not torch.equal(const, none)
    with pytest.raises(ConfigError):
        G(z, noise_mode="loud")


def test_truncation_towards_w_avg(tiny_generator):
    G = tiny_generator
    z = torch.randn(4, G.z_dim)
    with torch.no_grad():
        w1 = G.mapping(z)
        w0 = G.mapping(z, truncation_psi=0.0)
        wh = G.mapping(z, truncation_psi=0.5)
        wc = G.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(w0, G.mapping.w_avg.expand_as(w0))
    assert torch.allclose(wh, 0.5 * (w1 + w0), atol=1e-6)
    assert torch.allclose(wc[:, :2], wh[:, :2]) and torch.equal(wc[:, 2:], w1[:, 2:])


def test_w_avg_tracking():
    G = Generator.from_arch("tiny16", seed=0)
    before = G.mapping.w_avg.clone()
    with torch.no_grad():
        G.mapping(torch.randn(8, G.z_dim), update_w_avg=True)
    assert not torch.equal(before, G.mapping.w_avg)


def test_styles_accept_single_w_and_per_layer_w(tiny_generator):
    G = tiny_generator
    with torch.no_grad():
        w = G.mapping(torch.randn(2, G.z_dim))
        assert torch.equal(G.styles(w), G.styles(w[:, 0]))
        assert G.styles(w).shape == (2, G.layout.dim)


def test_bad_inputs(tiny_generator):
    G = tiny_generator
    with pytest.raises(ConfigError, match="z must have shape"):
        G.mapping(torch.randn(2, G.z_dim + 1))
    w = G.mapping(torch.randn(1, G.z_dim))
    S = G.styles(w)
    S[0, 3] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        G.synthesize(S, w=w)
    with pytest.raises(ConfigError, match="w must be"):
        G.styles(torch.randn(1, 3, G.config.w_dim))


def test_seed_to_z_matches_the_official_generate_script():
    z = seed_to_z(42, 512)
    assert np.allclose(z.numpy(), np.random.RandomState(42).randn(1, 512).astype(np.float32))


def test_gradients_flow_through_synthesis_from_s(tiny_generator):
    G = tiny_generator
    w = G.mapping(torch.randn(1, G.z_dim)).detach()
    dS = torch.zeros(1, G.layout.dim, requires_grad=True)
    G.synthesize(G.styles(w).detach() + dS, w=w).square().mean().backward()
    assert dS.grad is not None and dS.grad.abs().sum() > 0


def test_bfloat16_synthesis_within_its_documented_error(tiny_generator):
    # docs/benchmarks.md: mean |error| under 2% of the mean |image| value, largest error under 10% of the largest value
    G = tiny_generator
    with torch.no_grad():
        w = G.mapping(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(0)))
        S = G.styles(w)
        img = G.synthesize(S, w=w)
        low = G.synthesize(S, w=w, dtype=torch.bfloat16)
    err = (low - img).abs()
    assert low.dtype == torch.float32 and float(err.max()) > 0  # it did run in bfloat16
    assert float(err.mean()) < 0.02 * float(img.abs().mean())
    assert float(err.max()) < 0.1 * float(img.abs().max())
    assert torch.equal(G.synthesize(S, w=w, dtype=torch.float32), img)
    with pytest.raises(ConfigError):
        G.synthesize(S, w=w, dtype=torch.float16)


@pytest.mark.parametrize("n, c, o, h, w", [(2, 3, 5, 13, 7), (1, 4, 4, 8, 8), (3, 6, 2, 9, 16), (1, 2, 3, 1, 2)])
def test_winograd_conv3x3_equals_the_direct_convolution(n, c, o, h, w):
    from genfields.stylegan2 import ops

    torch.manual_seed(n + c + h)
    x, weight = torch.randn(n, c, h, w), torch.randn(o, c, 3, 3)
    exact = torch.nn.functional.conv2d(x.double(), weight.double(), padding=1)
    y = ops.winograd_conv3x3(x, weight)
    assert y.shape == exact.shape and y.dtype == torch.float32
    assert (y.double() - exact).abs().max() < 1e-5 * exact.abs().max()


@pytest.fixture
def freed_memory_kept(monkeypatch):
    """As under the CLI (`devices.keep_freed_memory`), without changing this test process's allocator."""
    import genfields.devices

    monkeypatch.setattr(genfields.devices, "_freed_memory_kept", True)


def test_winograd_is_chosen_only_for_wide_float32_layers_outside_autograd_and_autocast(freed_memory_kept, monkeypatch):
    import genfields.devices
    from genfields.stylegan2 import ops

    wide, narrow = torch.zeros(256, 256, 3, 3), torch.zeros(128, 128, 3, 3)
    x = torch.zeros(2, 256, 32, 32)
    assert ops._winograd_pays(x, wide)
    assert not ops._winograd_pays(torch.zeros(2, 128, 32, 32), narrow)  # the transforms' traffic would dominate
    assert not ops._winograd_pays(torch.zeros(1, 256, 32, 32), wide)  # 1,024 output pixels
    assert ops._winograd_pays(torch.zeros(1, 512, 32, 32), torch.zeros(512, 512, 3, 3))  # enough at 512 channels
    assert not ops._winograd_pays(torch.zeros(1, 512, 16, 32), torch.zeros(512, 512, 3, 3))
    assert not ops._winograd_pays(x.bfloat16(), wide.bfloat16())
    assert not ops._winograd_pays(x, torch.zeros(256, 256, 1, 1))
    assert not ops._winograd_pays(x.requires_grad_(), wide)
    with torch.no_grad():
        assert ops._winograd_pays(x, wide)
        with torch.autocast("cpu", torch.bfloat16):  # `--amp`: the products would run in bfloat16
            assert not ops._winograd_pays(x, wide)
    with ops.without_winograd():
        assert not ops._winograd_pays(x.detach(), wide)
    mkldnn = torch.backends.mkldnn.enabled
    try:
        torch.backends.mkldnn.enabled = False  # the exact-field measurement's direct convolutions
        assert not ops._winograd_pays(x.detach(), wide)
    finally:
        torch.backends.mkldnn.enabled = mkldnn
    monkeypatch.setattr(genfields.devices, "_freed_memory_kept", False)  # glibc's default allocator
    assert not ops._winograd_pays(x.detach(), wide)


def test_synthesis_of_a_wide_generator_takes_the_winograd_path_and_matches_the_direct_one(freed_memory_kept,
                                                                                          monkeypatch):
    # batch 16, then batch 1 (styles folded into the weights) with the pixel threshold lowered to reach it
    from genfields.stylegan2 import ops
    from genfields.stylegan2.config import GeneratorConfig

    G = Generator(GeneratorConfig(img_resolution=32, z_dim=16, w_dim=16, mapping_layers=1, channel_base=8192,
                                  channel_max=256)).eval()  # 256 channels from 4x4 to 32x32
    calls = []
    original = ops.winograd_conv3x3
    monkeypatch.setattr(ops, "winograd_conv3x3", lambda x, weight: calls.append(x.shape) or original(x, weight))
    with torch.no_grad():
        w = G.mapping(torch.randn(16, 16, generator=torch.Generator().manual_seed(0)))
        S = G.styles(w)
        fast = G.synthesize(S, w=w)
        with ops.without_winograd():
            direct = G.synthesize(S, w=w)
        monkeypatch.setattr(ops, "WINOGRAD_MIN_PIXELS", 1024)
        single = G.synthesize(S[:1], w=w[:1])
    # every 'same' conv with 2,048 pixels or more: 16 x 16 x 16, 16 x 32 x 32; then 1 x 32 x 32 above 1,024
    assert [tuple(s[-2:]) for s in calls] == [(16, 16), (32, 32), (32, 32)]
    assert (fast - direct).abs().max() < 1e-4 * direct.abs().max()
    assert (single - direct[:1]).abs().max() < 1e-4 * direct.abs().max()


def test_derived_weight_forms_are_kept_only_while_the_weight_is_unchanged():
    from genfields.stylegan2 import ops

    weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3), requires_grad=False)
    made = []

    def double(t):
        made.append(1)
        return t * 2

    first = ops.derived(weight, ("double",), double)
    assert ops.derived(weight, ("double",), double) is first and len(made) == 1
    with torch.no_grad():
        weight.add_(1)  # an optimiser step, or load_state_dict: a new version of the same storage
    assert torch.equal(ops.derived(weight, ("double",), double), weight * 2) and len(made) == 2
    weight.data = torch.randn(4, 3, 3, 3)  # a replaced storage
    assert torch.equal(ops.derived(weight, ("double",), double), weight * 2) and len(made) == 3
    weight.requires_grad_(True)  # a gradient can flow into it: made anew, part of the graph
    assert ops.derived(weight, ("double",), double).requires_grad and len(made) == 4
    with torch.no_grad():  # no gradient again: the form kept for this storage and version is still right
        assert torch.equal(ops.derived(weight, ("double",), double), weight * 2)
    assert len(made) == 4


def test_derived_keeps_nothing_while_torch_compile_traces(monkeypatch):
    # under tracing the graph makes the form itself; writing to the weight's __dict__ there breaks the trace
    # (torch.compile of the synthesis failed on it before the guard)
    from genfields.stylegan2 import ops

    weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3), requires_grad=False)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert torch.equal(ops.derived(weight, ("double",), lambda t: t * 2), weight * 2)
    assert "_genfields_derived" not in weight.__dict__
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: False)
    ops.derived(weight, ("double",), lambda t: t * 2)
    assert ("double",) in weight.__dict__["_genfields_derived"]


def test_synthesis_follows_new_weights_after_their_forms_were_kept():
    # the kept layouts, squared norms and conversions of one set of weights never leak into another's images
    G, other = Generator.from_arch("tiny16", seed=3).eval(), Generator.from_arch("tiny16", seed=7).eval()
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        G(z), G(z[:1]), G.synthesize(G.styles(G.mapping(z)), G.mapping(z), dtype=torch.bfloat16)
        before = {k: v.clone() for k, v in G.state_dict().items()}
        G.load_state_dict(other.state_dict())
        assert torch.equal(G(z), other(z)) and torch.equal(G(z[:1]), other(z[:1]))
        G.load_state_dict(before)
        G64 = G.double()
        assert (G64(z.double()) - reference_synthesize(G64, G64.styles(G64.mapping(z.double())),
                                                       G64.mapping(z.double()))).abs().max() < 1e-10


def test_inference_mode_keeps_nothing_that_autograd_would_refuse():
    G = Generator.from_arch("tiny16", seed=4).eval().requires_grad_(False)  # frozen, as under an editor
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = G(z[:1]).clone(), G(z).clone()
    w = G.mapping(z)
    S = G.styles(w).requires_grad_(True)
    image = G.synthesize(S, w)  # the convolutions save their (kept) weights for the backward pass
    image.square().mean().backward()
    assert S.grad is not None and torch.equal(image.detach(), expected[1])
    assert torch.allclose(G.synthesize(S[:1].detach(), w[:1]), expected[0], atol=1e-5)  # batch 1's own path
