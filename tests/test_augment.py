"""The PLIF paper's augmentation and normalisation pipelines (spec plif.md section 4) and their hook in the trainer."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from torch.utils.data import TensorDataset

from spikedyn.data import SpikeDataset
from spikedyn.data.augment import (
    AUGMENTATIONS,
    AugmentPipeline,
    AugmentUnavailableError,
    BatchAugmentation,
    check_augment,
    make_augmentation,
)
from spikedyn.models.plif import PLIF_PRESETS
from spikedyn.batching import Batcher, epoch_generator
from spikedyn.train import TrainConfig, Trainer

#: the tests that run the pipelines; the names, presets and the missing-package error need no kornia
needs_kornia = pytest.mark.skipif(
    importlib.util.find_spec("kornia") is None, reason='the pipelines need kornia: pip install "spikedyn[augment]"'
)

#: spec plif.md section 4, copied here by hand (not imported from the code under test)
SPEC_MEAN_STD = {
    "plif-mnist": ((0.1307,), (0.3081,)),
    "plif-fmnist": ((0.2860,), (0.3530,)),
    "plif-cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


def images(n: int, shape=(1, 28, 28), seed: int = 0) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


def fixture_set(shape=(1, 28, 28), train: int = 32, test: int = 16) -> SpikeDataset:
    """Random images of the real shape in [0, 1], 10 classes (the PLIF presets' data, small)."""
    y = torch.arange(train + test) % 10
    x = images(train + test, shape)
    return SpikeDataset("fixture", TensorDataset(x[:train], y[:train]), TensorDataset(x[train:], y[train:]), 10,
                        encoder="direct")


@needs_kornia
@pytest.mark.parametrize("name", list(SPEC_MEAN_STD))
def test_normalisation_is_the_spec_mean_and_std(name):
    """Catches a wrong constant, a swapped mean/std or a normalisation over the wrong axis: the
    evaluation path (no augmentation) gives (x - mean_c) / std_c per channel c, with the spec's numbers."""
    mean, std = SPEC_MEAN_STD[name]
    shape = (len(mean), 32, 32) if len(mean) == 3 else (1, 28, 28)
    x = images(4, shape)
    out = make_augmentation(name, shape)(x, train=False)
    expected = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    assert torch.allclose(out, expected, atol=1e-6)
    # one pixel by hand: MNIST black 0 -> -0.1307 / 0.3081 = -0.42421
    if name == "plif-mnist":
        assert float(make_augmentation(name, shape)(torch.zeros(1, *shape), train=False)[0, 0, 0, 0]) == pytest.approx(
            -0.42421, abs=1e-5
        )


@needs_kornia
def test_fmnist_pipeline_does_not_augment():
    """Fashion-MNIST is normalised only (spec): training batches equal the normalised images."""
    x = images(8)
    aug = make_augmentation("plif-fmnist", (1, 28, 28))
    assert torch.equal(aug(x, train=True, generator=torch.Generator().manual_seed(1)), aug(x, train=False))


@needs_kornia
def test_mnist_affine_keeps_shape_and_fixed_identity_is_exact():
    """The affine step with degrees 0, translate 0, scale 1 returns the image (nearest resampling:
    exactly); the real one keeps [B, 1, 28, 28] and changes the images."""
    x = images(16)
    identity = BatchAugmentation(AugmentPipeline("identity", "", affine=(0.0, 0.0, (1.0, 1.0))), (1, 28, 28))
    assert torch.equal(identity(x, train=True, generator=torch.Generator().manual_seed(0)), x)
    real = make_augmentation("plif-mnist", (1, 28, 28))
    out = real(x, train=True, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert not torch.allclose(out, real(x, train=False))


@needs_kornia
def test_mnist_affine_draws_the_spec_ranges_with_nearest_resampling():
    """Catches other ranges (degrees, translate, scale) or a bilinear resampling (torchvision's
    RandomAffine default is nearest): every drawn angle is in [-30, 30] deg and some beyond 20,
    every shift within 0.15 * 28 = 4.2 px and some beyond 3, every scale in [0.85, 1.11] and both
    ends approached; every output pixel is an input pixel of its image or the fill 0."""
    pipeline = AUGMENTATIONS["plif-mnist"]
    bare = BatchAugmentation(AugmentPipeline("affine", "", affine=pipeline.affine), (1, 28, 28))
    x = images(256)
    out = bare(x, train=True, generator=torch.Generator().manual_seed(3))
    params = bare.augment[0]._params
    angle, shift, scale = params["angle"], params["translations"], params["scale"][:, 0]
    assert angle.abs().max() <= 30 and angle.abs().max() > 20
    assert shift.abs().max() <= 4.2 + 1e-5 and shift.abs().max() > 3
    assert scale.min() >= 0.85 and scale.max() <= 1.11 + 1e-6 and scale.min() < 0.88 and scale.max() > 1.08
    for i in range(8):
        allowed = torch.cat([x[i].flatten(), torch.zeros(1)])
        assert torch.isin(out[i].flatten(), allowed).all(), "a resampled pixel is not an input pixel (bilinear?)"


@needs_kornia
def test_cifar_crop_and_flip_are_whole_pixel_windows_of_the_zero_padded_image():
    """Catches another padding, a crop that resamples, or a flip that never (or always) happens:
    each augmented image is one of the 9 x 9 windows of 32 x 32 in the image padded by 4 zeros,
    flipped left-right or not, and over 64 images both flips and off-centre windows occur."""
    pipeline = AUGMENTATIONS["plif-cifar10"]
    bare = BatchAugmentation(AugmentPipeline("crop-flip", "", crop_padding=pipeline.crop_padding, hflip=pipeline.hflip),
                             (3, 32, 32))
    x = images(64, (3, 32, 32))
    out = bare(x, train=True, generator=torch.Generator().manual_seed(5))
    assert out.shape == (64, 3, 32, 32)
    assert make_augmentation("plif-cifar10", (3, 32, 32))(x, True, torch.Generator().manual_seed(5)).shape == out.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips, offsets = set(), set()
    for i in range(64):
        found = [
            (flip, a, b)
            for a in range(9) for b in range(9) for flip in (False, True)
            if torch.equal(out[i], (lambda w: w.flip(-1) if flip else w)(padded[i, :, a : a + 32, b : b + 32]))
        ]
        assert found, f"image {i} is no flipped or unflipped window of the padded image"
        flips.add(found[0][0])
        offsets.add(found[0][1:])
    assert flips == {False, True} and len(offsets) > 10


def translated(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` [C, H, W] moved by whole pixels, the uncovered pixels 0 (written by hand, no kornia)."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
        x[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


@needs_kornia
def test_shift_moves_each_image_by_whole_pixels_and_keeps_rate_code_values():
    """Catches a rotation or scaling in ``shift``, a shift beyond 0.1 * 28 = 2.8 px (so at most 3 whole
    pixels after nearest resampling), or a normalisation (the rate encoder needs values in [0, 1]): each
    augmented image is its input translated by whole pixels within +-3 with zero fill, several different
    shifts occur over 64 images, and the evaluation path returns the images unchanged."""
    aug = make_augmentation("shift", (1, 28, 28))
    x = images(64)
    out = aug(x, train=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(aug(x, train=False), x)
    shifts = set()
    for i in range(64):
        found = [(a, b) for a in range(-3, 4) for b in range(-3, 4) if torch.equal(out[i], translated(x[i], a, b))]
        assert found, f"image {i} is no whole-pixel translation of its input within +-3 pixels"
        shifts.add(found[0])
    assert len(shifts) > 10 and max(max(abs(a), abs(b)) for a, b in shifts) >= 2


@needs_kornia
def test_affine_small_draws_its_ranges_without_normalising():
    """``affine-small``: angles within +-10 deg (some beyond 7), shifts within 2.8 px, scales in
    [0.9, 1.1]; every output pixel is an input pixel of its image or the fill 0 (values stay in [0, 1]
    for the rate encoder); evaluation batches pass unchanged."""
    aug = make_augmentation("affine-small", (1, 28, 28))
    x = images(256)
    out = aug(x, train=True, generator=torch.Generator().manual_seed(4))
    params = aug.augment[0]._params
    angle, shift, scale = params["angle"], params["translations"], params["scale"][:, 0]
    assert angle.abs().max() <= 10 and angle.abs().max() > 7
    assert shift.abs().max() <= 2.8 + 1e-5 and scale.min() >= 0.9 and scale.max() <= 1.1 + 1e-6
    for i in range(8):
        assert torch.isin(out[i].flatten(), torch.cat([x[i].flatten(), torch.zeros(1)])).all()
    assert torch.equal(aug(x, train=False), x)


def batches(batcher: Batcher, split: str, seed: int, epoch: int) -> list[torch.Tensor]:
    return [x for x, _ in batcher.batches(split, 8, epoch_generator(seed, epoch), shuffle=split == "train")]


@needs_kornia
def test_augmentation_draws_follow_seed_and_epoch_only():
    """Catches draws from the unseeded global generator (or a global generator left changed): the
    same (seed, epoch) gives the same augmented batches whatever the global RNG state, another epoch
    other ones, and iterating leaves the global RNG state as it was (dropout masks unchanged)."""
    config = TrainConfig(dataset="fixture", augment="plif-mnist", encoder="direct", steps=2, batch_size=8).resolved()
    batcher = Batcher(fixture_set(), config, torch.device("cpu"))
    torch.manual_seed(1)
    state = torch.get_rng_state()
    first = batches(batcher, "train", 5, 3)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(2)
    again = batches(batcher, "train", 5, 3)
    other = batches(batcher, "train", 5, 4)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not any(torch.equal(a, b) for a, b in zip(first, other))


@needs_kornia
def test_only_training_batches_are_augmented():
    """Catches augmentation on the test split: test batches are the normalised images, exactly;
    training batches are not (the affine moved them)."""
    data = fixture_set()
    config = TrainConfig(dataset="fixture", augment="plif-mnist", encoder="direct", steps=2, batch_size=8).resolved()
    batcher = Batcher(data, config, torch.device("cpu"))
    test = torch.cat([x[0] for x in batches(batcher, "test", 5, 0)])  # step 0 of the direct encoding
    assert torch.allclose(test, (data.test.tensors[0] - 0.1307) / 0.3081, atol=1e-6)
    plain = Batcher(data, TrainConfig(dataset="fixture", encoder="direct", steps=2, batch_size=8).resolved(),
                    torch.device("cpu"))
    train = torch.cat([x[0] for x in batches(batcher, "train", 5, 0)])
    unaugmented = torch.cat([x[0] for x in batches(plain, "train", 5, 0)])  # same shuffling
    assert not torch.allclose(train, (unaugmented - 0.1307) / 0.3081, atol=1e-3)


def test_plif_presets_carry_the_paper_pipelines():
    """The static-image presets name their data set's pipeline, the neuromorphic ones none; the PLIF
    tables' cells train with them."""
    from spikedyn.reproduce import get_table

    expected = {"mnist": "plif-mnist", "fmnist": "plif-fmnist", "cifar10": "plif-cifar10", "nmnist": None,
                "cifar10dvs": None, "dvsgesture": None}
    assert {name: p.train_options()["augment"] for name, p in PLIF_PRESETS.items()} == expected
    table = get_table("plif-table2")
    assert table.row("MNIST, accuracy-A").train_options["augment"] == "plif-mnist"
    assert table.row("CIFAR-10, accuracy-B").train_options["augment"] == "plif-cifar10"
    assert table.row("N-MNIST, accuracy-A").train_options["augment"] is None
    assert get_table("plif-table4").row("F-MNIST, tau 16").train_options["augment"] == "plif-fmnist"
    assert not any("not applied" in note for note in table.notes)


@needs_kornia
def test_one_training_step_of_the_plif_mnist_preset(tmp_path):
    """The PLIF MNIST preset as the paper trains it (its network, T 8, batch 16, plif-mnist) trains
    on 32 images of the real shape: two batches, finite loss, a checkpoint with the pipeline's name."""
    options = {**PLIF_PRESETS["mnist"].train_options(), "dataset": "fixture", "epochs": 1, "eval_batch_size": 16,
               "out": str(tmp_path / "run"), "progress": False}
    trainer = Trainer(TrainConfig(**options), dataset=fixture_set())
    assert trainer.config.augment == "plif-mnist" and trainer.batcher.augmentation is not None
    history = trainer.fit()
    assert len(history) == 1 and torch.isfinite(torch.tensor(history[0]["train_loss"]))
    assert trainer.state()["config"]["augment"] == "plif-mnist"


def small_plif(out, **changes) -> TrainConfig:
    values = {**PLIF_PRESETS["mnist"].train_options(channels=2, fc=8), "dataset": "fixture", "steps": 2,
              "batch_size": 8, "epochs": 2, "eval_batch_size": 16, "out": str(out), "progress": False}
    return TrainConfig(**{**values, **changes})


@needs_kornia
def test_resumed_augmented_run_equals_the_uninterrupted_one(tmp_path):
    """Catches augmentation draws that depend on what ran before in the process: one epoch, a new
    trainer resuming, gives the weights of two epochs in one go; resuming with another pipeline is refused."""
    data = fixture_set()
    full = Trainer(small_plif(tmp_path / "full"), dataset=data)
    full.fit()
    Trainer(small_plif(tmp_path / "part"), dataset=data).fit(stop_after=1)
    torch.manual_seed(123)  # whatever the process did in between
    resumed = Trainer(small_plif(tmp_path / "part"), dataset=data)
    resumed.fit(resume=True)
    for name, p in full.model.state_dict().items():
        assert torch.equal(p, resumed.model.state_dict()[name]), name
    with pytest.raises(ValueError, match="augment='plif-mnist'.*augment=None"):
        Trainer(small_plif(tmp_path / "part", epochs=3, augment=None), dataset=data).fit(resume=True)


def test_names_and_bad_data_are_clear_errors():
    """Unknown names list the registry; ``none`` is no pipeline; flattened images, sequences, another
    channel count and images the loader normalised already are refused with the fix."""
    with pytest.raises(ValueError, match="unknown augment pipeline 'plif-imagenet'.*plif-mnist, plif-fmnist, plif-cifar10, affine-small, shift, none"):
        TrainConfig(augment="plif-imagenet").resolved()
    assert TrainConfig(augment="none").resolved().augment is None and check_augment("PLIF-MNIST") == "plif-mnist"
    assert make_augmentation("none", (784,)) is None
    with pytest.raises(ValueError, match=r"shape \[784\].*--data-option flatten=false"):
        make_augmentation("plif-mnist", (784,), "mnist")
    with pytest.raises(ValueError, match="nmnist-plif is sequence data"):
        make_augmentation("plif-mnist", (2, 34, 34), "nmnist-plif", kind="sequence")
    with pytest.raises(ValueError, match="normalises 3-channel images, but mnist has 1"):
        make_augmentation("plif-cifar10", (1, 28, 28), "mnist")
    with pytest.raises(ValueError, match="normalize=true"):
        make_augmentation("plif-cifar10", (3, 32, 32), "cifar10", data_options={"flatten": False, "normalize": True})
    flat = TrainConfig(dataset="fixture", augment="plif-mnist", encoder="direct").resolved()
    with pytest.raises(ValueError, match="flatten=false"):
        Batcher(fixture_set((784,)), flat, torch.device("cpu"))


def test_missing_kornia_names_the_install_command(monkeypatch, tmp_path):
    """Without kornia, asking for a pipeline says how to install it, before any data is read."""
    monkeypatch.setitem(sys.modules, "kornia", None)
    monkeypatch.setitem(sys.modules, "kornia.augmentation", None)
    with pytest.raises(AugmentUnavailableError, match=r'pip install "spikedyn\[augment\]"'):
        make_augmentation("plif-mnist", (1, 28, 28))
    config = TrainConfig(dataset="mnist", data_root=str(tmp_path / "no-data"), data_options={"flatten": False},
                         augment="plif-mnist", out=str(tmp_path / "run"))
    with pytest.raises(AugmentUnavailableError, match=r"--augment plif-mnist needs the optional 'kornia' package"):
        Trainer(config)
    assert make_augmentation(None, (1, 28, 28)) is None  # no pipeline: no kornia needed


def test_cli_lists_the_pipelines(capsys):
    """`spikedyn train --help` names every pipeline; --augment reaches the config."""
    from spikedyn.cli import build_parser
    from spikedyn.cli.train import given_config_values

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(f"{name}:" in text for name in AUGMENTATIONS)
    args = parser.parse_args(["train", "--augment", "plif-cifar10"])
    assert given_config_values(args)["augment"] == "plif-cifar10"
