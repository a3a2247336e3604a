import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aebench.config import DataConfig
from aebench.data import load_split, to_float
from aebench.datasets import fetch
from aebench.evaluator import (
    EvaluatorNet,
    _GridAvgPool,
    accuracy,
    default_epochs,
    default_max_shift,
    features_and_predictions,
    load_evaluator,
    load_evaluator_info,
    random_shift,
    save_evaluator,
    train_evaluator,
)

# Chance on the 10 balanced digit classes is 10%, and a plain logistic regression on the raw 64
# pixels of sklearn's digits already scores ~96% on held-out images; a CNN that stays below 90%
# after a few hundred Adam steps is broken (wrong labels, frozen weights, eval-mode mix-up), not
# unlucky. Measured with the settings below: 96-99% across seeds.
DIGITS_MIN_ACCURACY = 0.90


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second intra-op thread gains nothing, and on a shared 2-core
    machine its spin-waiting made training steps tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    fetch("digits", DataConfig(), root / "data", root / "download")
    out = {}
    for split in ("train", "val", "test"):
        images, labels = load_split(root / "data", split)
        out[split] = (to_float(images), torch.from_numpy(labels))
    return out


@pytest.fixture(scope="module")
def trained(digits):
    """One short digits training shared by the tests that need a trained evaluator."""
    return train_evaluator(*digits["train"], *digits["val"], seed=0, epochs=8)


def _random_task(n=96, shape=(1, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_output_shapes(shape):
    torch.manual_seed(0)
    model = EvaluatorNet(shape[0], num_classes=10).eval()
    x = torch.rand(7, *shape)
    assert model(x).shape == (7, 10)
    assert model.features(x).shape == (7, 128)
    feats, preds = features_and_predictions(model, x, batch_size=3)
    assert feats.shape == (7, 128) and feats.dtype == np.float64
    assert preds.shape == (7,) and preds.dtype == np.int64
    assert preds.min() >= 0 and preds.max() < 10
    # batching does not change the result: eval-mode BatchNorm uses running statistics
    np.testing.assert_allclose(feats, features_and_predictions(model, x)[0], rtol=1e-5, atol=1e-6)


def test_feature_dim_and_class_count_are_configurable():
    model = EvaluatorNet(3, num_classes=4, feature_dim=32).eval()
    x = torch.rand(2, 3, 12, 10)
    assert model.features(x).shape == (2, 32)
    assert model(x).shape == (2, 4)


def test_rejects_wrong_inputs_and_train_mode_features():
    model = EvaluatorNet(1).eval()
    with pytest.raises(ValueError, match="at least 8"):
        model(torch.rand(2, 1, 7, 8))
    with pytest.raises(ValueError, match="N×1×H×W"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(RuntimeError, match="eval mode"):
        model.train().features(torch.rand(2, 1, 8, 8))


@pytest.mark.parametrize("size", [(2, 2), (4, 4), (7, 7), (8, 8), (5, 9)])
def test_grid_pool_matches_adaptive_avg_pool(size):
    x = torch.randn(3, 4, *size, dtype=torch.float64)
    torch.testing.assert_close(_GridAvgPool(4)(x), F.adaptive_avg_pool2d(x, 4))


def test_same_seed_gives_bit_identical_weights():
    train, val = _random_task(seed=1), _random_task(n=32, seed=2)
    kwargs = dict(epochs=2, batch_size=16, lr=1e-3)
    first, _ = train_evaluator(*train, *val, seed=5, **kwargs)
    second, _ = train_evaluator(*train, *val, seed=5, **kwargs)
    other, _ = train_evaluator(*train, *val, seed=6, **kwargs)
    a, b, c = first.state_dict(), second.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_learns_digits(digits, trained):
    model, info = trained
    assert accuracy(model, *digits["test"]) > DIGITS_MIN_ACCURACY
    assert info["history"][-1]["train_loss"] < info["history"][0]["train_loss"]


def test_returns_the_best_validation_epoch(digits, trained):
    model, info = trained
    history = info["history"]
    assert len(history) == info["epochs"] == 8
    assert info["best_val_accuracy"] == max(row["val_accuracy"] for row in history)
    assert history[info["best_epoch"] - 1]["val_accuracy"] == info["best_val_accuracy"]
    # the returned weights are that epoch's: they reproduce its validation accuracy
    assert accuracy(model, *digits["val"]) == pytest.approx(info["best_val_accuracy"])
    assert not model.training


def test_info_holds_no_wall_clock_time(trained):
    """The info dict goes into the checkpoint and evaluator.json: a rerun must not change them."""
    _, info = trained
    assert not [key for key in info if "second" in key or "time" in key]


def test_save_load_round_trip(tmp_path, digits, trained):
    model, info = trained
    path = tmp_path / "evaluator.pt"
    save_evaluator(model, path, info)
    payload = torch.load(path, weights_only=True)  # plain types only
    assert payload["config"] == model.config
    loaded = load_evaluator(path, "cpu")
    assert not loaded.training
    images = digits["test"][0]
    feats, preds = features_and_predictions(model, images)
    feats2, preds2 = features_and_predictions(loaded, images)
    np.testing.assert_array_equal(feats, feats2)
    np.testing.assert_array_equal(preds, preds2)
    assert load_evaluator_info(path) == info


def test_augmentation_keeps_shape_and_range():
    images = torch.zeros(64, 3, 12, 12)
    images[:, :, 2:-2, 2:-2] = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    shifted = random_shift(images, 2, torch.Generator().manual_seed(1))
    assert shifted.shape == images.shape and shifted.dtype == images.dtype
    assert shifted.min() >= 0 and shifted.max() <= 1
    # content 2 pixels away from the border is moved, never cut or blended: sums are unchanged
    torch.testing.assert_close(shifted.sum((1, 2, 3)), images.sum((1, 2, 3)))
    assert not torch.equal(shifted, images)
    # all channels of an image move together
    for n in range(4):
        moved = [torch.nonzero(shifted[n, c] != 0).min(0).values for c in range(3)]
        assert all(torch.equal(moved[0], m) for m in moved)
    again = random_shift(images, 2, torch.Generator().manual_seed(1))
    assert torch.equal(shifted, again)
    assert torch.equal(random_shift(images, 0, torch.Generator()), images)


def test_every_offset_is_used_and_none_beyond_max_shift():
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 4, 4] = 1.0  # one lit pixel in the centre
    shifted = random_shift(image.expand(2000, 1, 9, 9), 2, torch.Generator().manual_seed(0))
    positions = {tuple(torch.nonzero(s[0]).squeeze(0).tolist()) for s in shifted}
    assert positions == {(r, c) for r in range(2, 7) for c in range(2, 7)}


def test_defaults():
    assert default_max_shift(8, 8) == 1
    assert default_max_shift(28, 28) == 2
    assert default_max_shift(32, 32) == 2
    assert default_epochs(1257, 64) == 40  # digits: 20 batches an epoch, ≥ 800 steps
    assert default_epochs(3500, 64) == 20  # mnist5k
    assert default_epochs(54000, 64) == 20
