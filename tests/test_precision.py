"""Speed switches change speed, not results: bf16 autocast, channels_last, torch.compile, seeding."""

import pytest
import torch

from ssmri.lit.module import ReconstructionModule
from ssmri.physics import MultiCoilMRI, SingleCoilMRI
from ssmri.physics.acquisition import Acquisition
from ssmri.runner.run import train
from tests.helpers.config import FAST, compose_config
from tests.helpers.models import tiny_model
from tests.helpers.problems import acquisition_for, small_problem


def test_bf16_mixed_training_on_cpu_runs_and_its_ffts_see_float32(tmp_path, monkeypatch):
    seen = set()
    for name in ("fft2", "ifft2"):
        original = getattr(torch.fft, name)

        def recording(z, *args, _original=original, **kwargs):
            seen.add(z.dtype)
            return _original(z, *args, **kwargs)

        monkeypatch.setattr(torch.fft, name, recording)
    cfg = compose_config(
        tmp_path, [*FAST, "loss=mo_ei", "trainer.precision=bf16-mixed", "trainer.max_epochs=1"]
    )
    metrics = train(cfg)
    assert seen == {torch.complex64}, seen  # never bf16 or half: complex64 = two float32
    assert torch.isfinite(torch.tensor(metrics["test/psnr"]))


def test_channels_last_changes_the_layout_not_the_result():
    _, _, y, mask = small_problem()
    plain, nhwc = tiny_model().eval(), tiny_model(channels_last=True).eval()
    nhwc.load_state_dict(plain.state_dict())
    conv = nhwc.denoiser.down[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    acq = Acquisition(mask)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(y, acq), plain(y, acq), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("gpu", "capability", "nhwc"),
    [(False, "AVX2", False), (False, "AVX512", True), (True, "AVX2", True), (False, "DEFAULT", False)],
)
def test_memory_format_left_to_the_machine_follows_its_fast_kernels(monkeypatch, gpu, capability, nhwc):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    model = tiny_model(channels_last=None)
    conv = model.denoiser.down[0][0].weight

    def in_nhwc() -> bool:
        return conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()

    _, _, y, mask = small_problem()
    acq = Acquisition(mask)
    assert model.channels_last is nhwc and in_nhwc() is nhwc  # training: by machine
    with torch.no_grad():
        model.eval()(y, acq)
    assert model.denoiser.down[0][0].weight is conv and in_nhwc()  # inference: NHWC, same parameter
    model.training = True  # as Lightning restores modes after validation, without calling train()
    model(y, acq)
    assert in_nhwc() is nhwc
    forced = tiny_model(channels_last=False).eval()  # an explicit choice holds in both modes
    with torch.no_grad():
        forced(y, acq)
    assert forced.denoiser.down[0][0].weight.is_contiguous()


def test_switching_modes_keeps_results_and_training():
    _, _, y, mask = small_problem()
    acq = Acquisition(mask)
    model, reference = tiny_model(channels_last=None), tiny_model(channels_last=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(y, acq), reference.eval()(y, acq), rtol=1e-5, atol=1e-5)
    model.train()
    model(y, acq).square().mean().backward()
    optimizer.step()  # the optimiser still holds the model's parameters after the round trip
    assert not torch.equal(model.denoiser.down[0][0].weight, reference.denoiser.down[0][0].weight)


def test_float64_stays_float64_through_physics_and_both_data_consistencies():
    # Below float32 the FFTs promote (the bf16 test above); float64 must not be cut to float32,
    # or a float64 gradient check measures float32 rounding (the reference SSDU test does this).
    for physics in (SingleCoilMRI(32, 4), MultiCoilMRI(32, 4, coils=3)):
        _, x, y, mask = small_problem(batch=2, physics=physics)
        acq = acquisition_for(physics, mask).to(torch.float64)
        with torch.no_grad():
            out = tiny_model().double().eval()(y.double(), acq)
            assert physics.A_adjoint(y.double(), acq.mask, acq.maps).dtype == torch.float64
        assert out.dtype == torch.float64


@pytest.mark.slow
def test_compile_compiles_only_the_denoiser_and_keeps_checkpoints_interchangeable():
    _, _, y, mask = small_problem(batch=2)
    eager, compiled = tiny_model(), tiny_model(compile=True)
    compiled.load_state_dict(eager.state_dict())  # same keys: no "_orig_mod." prefix
    assert compiled.denoiser._compiled_call_impl is not None
    assert getattr(compiled, "_compiled_call_impl", None) is None  # FFTs and DC stay eager
    out_eager, out_compiled = eager(y, Acquisition(mask)), compiled(y, Acquisition(mask))
    # Inductor fuses and reorders float32 arithmetic: agreement to rounding level, not bitwise
    # (on the phantom problem one of 4,096 entries differs by 1.5e-5 after three iterations).
    torch.testing.assert_close(out_compiled, out_eager, rtol=1e-4, atol=5e-5)
    out_compiled.square().mean().backward()
    assert all(p.grad is not None for p in compiled.parameters())


def test_loss_randomness_differs_across_ranks_and_replays_exactly(monkeypatch):
    module = ReconstructionModule(model=None, loss=None, physics=None, optimizer=None, seed=3)

    def draws(rank: int, epoch: int, batch_idx: int) -> torch.Tensor:
        monkeypatch.setattr(ReconstructionModule, "global_rank", property(lambda self: rank))
        monkeypatch.setattr(ReconstructionModule, "current_epoch", property(lambda self: epoch))
        return torch.rand(8, generator=module.training_rng(batch_idx))

    assert torch.equal(draws(0, 1, 5), draws(0, 1, 5))
    assert not torch.equal(draws(0, 1, 5), draws(1, 1, 5))  # ranks never share masks
    assert not torch.equal(draws(0, 1, 5), draws(0, 2, 5))
    assert not torch.equal(draws(0, 1, 5), draws(0, 1, 6))


def test_image_quality_is_measured_in_float32_under_bf16_autocast():
    from ssmri.evaluation.metrics import PerImageQuality

    physics, x, y, mask = small_problem(batch=2)
    x_hat = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    zero_filled = physics.zero_filled(y, Acquisition(mask))
    plain, under_autocast = PerImageQuality(), PerImageQuality()
    plain.update(torch.arange(2), x_hat, zero_filled, x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        under_autocast.update(torch.arange(2), x_hat, zero_filled, x)
    for name, value in plain.compute().items():  # SSIM's window would be a bf16 conv otherwise
        torch.testing.assert_close(under_autocast.compute()[name], value, rtol=0, atol=0)
