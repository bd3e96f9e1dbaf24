"""SSIBench's scenarios as config: presets compose, one fixed operator, the new losses in multi-coil."""

import pytest
import torch

from ssmri.data import KspaceDataset, MRIDataModule, PhantomImages
from ssmri.physics import Acquisition, MultiCoilMRI, SingleCoilMRI
from ssmri.runner.run import instantiate
from tests.helpers.config import compose_only
from tests.helpers.models import tiny_model
from tests.helpers.problems import SIZE

NEW = [
    "ssdu_consistency",
    "moc_ssdu",
    "ensure",
    "robust_ssdu",
    "noise2recon_ssdu",
    "ddssl",
    "robust_ei",
    "robust_mo_ei",
]


@pytest.mark.parametrize("scenario", ["noiseless", "noisy", "single", "multicoil"])
def test_presets_and_cpu_scenarios_compose(scenario):
    gpu = compose_only(["experiment=ssibench", f"scenario={scenario}", "loss=noise2inverse"])
    assert gpu.data.image_size == 320 and gpu.data.batch_size == 4 and gpu.physics.acceleration == 6
    assert gpu.model.denoiser.scales == 4 and gpu.model.denoiser.batch_norm is False
    loss = instantiate(gpu.loss)
    assert type(loss.splitter).__name__ == "BernoulliSplitter" and loss.num_splits == 3
    cpu = compose_only(["experiment=cpu_quick", f"scenario={scenario}", "loss=weighted_ssdu"])
    assert cpu.data.image_size == 64 and cpu.scenario.name == scenario
    assert instantiate(cpu.loss).splitter.center_fraction == 0.0
    physics = instantiate(cpu.physics)
    assert physics.noise_std == (0.1 if scenario == "noisy" else 0.0)
    assert physics.single_operator == (scenario == "single")
    assert isinstance(physics, MultiCoilMRI) == (scenario == "multicoil")


def test_without_a_scenario_the_tutorial_splitters_stay():
    cfg = compose_only(["loss=noise2inverse"])
    loss = instantiate(cfg.loss)
    assert type(loss.splitter).__name__ == "GaussianSplitter" and loss.num_splits == 20


def test_single_operator_acquires_every_sample_with_one_seeded_mask_but_the_law_still_varies():
    physics = SingleCoilMRI(SIZE, 4, single_operator=True, operator_seed=3)
    masks = physics.acquisition_masks(5, torch.Generator().manual_seed(0))
    again = physics.acquisition_masks(2, torch.Generator().manual_seed(9))
    assert all(torch.equal(m, masks[0]) for m in [*masks, *again])
    assert not torch.equal(
        masks[0], SingleCoilMRI(SIZE, 4, single_operator=True, operator_seed=4).acquisition_masks(1)[0]
    )
    fresh = physics.sample_mask(5, torch.Generator().manual_seed(0))  # MOI's extra operators
    assert not all(torch.equal(m, fresh[0]) for m in fresh)


def test_the_cache_of_a_single_operator_holds_its_one_mask_and_names_its_seed(tmp_path):
    def datamodule(seed: int) -> MRIDataModule:
        physics = SingleCoilMRI(SIZE, 4, single_operator=True, operator_seed=seed)
        return MRIDataModule(
            PhantomImages(SIZE),
            physics,
            SIZE,
            num_train=6,
            num_val=2,
            num_test=2,
            batch_size=2,
            cache_dir=tmp_path,
            chunk_size=4,
        )

    first = datamodule(3)
    first.prepare_data()
    fixed = first.physics.acquisition_masks(1)[0]
    for split in ("train", "val", "test"):
        dataset = KspaceDataset(first.cache_path, split, with_target=False)
        for i in range(len(dataset)):
            assert torch.equal(dataset[i]["mask"], fixed), (split, i)
    assert first.cache_spec()["physics"]["single_operator_seed"] == 3
    assert datamodule(4).cache_path != first.cache_path  # another operator is another cache
    assert (
        "single_operator_seed"
        not in MRIDataModule(
            PhantomImages(SIZE), SingleCoilMRI(SIZE, 4), SIZE, cache_dir=tmp_path
        ).cache_spec()["physics"]
    )


@pytest.mark.parametrize("name", NEW)
def test_new_losses_run_in_multicoil_and_keep_the_maps(name):
    cfg = compose_only(
        [
            "data=phantom",
            f"data.image_size={SIZE}",
            "physics=multicoil",
            "physics.noise_std=0.1",
            f"loss={name}",
            "physics.coils=3",
        ]
    )
    physics = instantiate(cfg.physics)
    rng = torch.Generator().manual_seed(0)
    x = PhantomImages(SIZE, seed=0).images("train", 2)
    acq = Acquisition(physics.sample_mask(2, rng), physics.sensitivity_maps(2))
    y = physics.simulate(x, acq, rng)
    loss = instantiate(cfg.loss)
    model = tiny_model()
    output = loss(model, physics, y, acq, None, torch.Generator().manual_seed(1))
    assert torch.isfinite(output.loss) and output.x_hat.shape == x.shape
    output.loss.backward()
    assert sum(p.grad.abs().sum() for p in model.parameters() if p.grad is not None) > 0
    with torch.no_grad():
        assert loss.reconstruct(model, physics, y, acq, torch.Generator()).shape == x.shape
