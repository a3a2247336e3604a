"""The copy rate's controls, on cases whose answer is known: a model that copies its input, one
that ignores it, and training images scored as samples."""

import numpy as np
import pytest
import torch

from aebench.memorisation import control_indices, reconstruction_control, training_images_rate
from aebench.metrics.sample_quality import copy_rate

SHAPE = (1, 4, 4)


class _Identity(torch.nn.Module):
    """Reconstructs every image exactly: a perfect memoriser of whatever it is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


class _Constant(_Identity):
    """Returns the same grey image whatever it is given."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, 0.5)


def _featurize(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return images.flatten(1).double().numpy(), np.zeros(len(images), dtype=np.int64)


def _data():
    generator = torch.Generator().manual_seed(0)
    train = torch.rand((300, *SHAPE), generator=generator)
    held_out = torch.rand((100, *SHAPE), generator=generator)
    return train, _featurize(train)[0], _featurize(held_out)[0]


def test_training_subset_is_seeded_distinct_and_sorted():
    subset = control_indices(50, 20, seed=3)
    assert len(set(subset.tolist())) == 20 and list(subset) == sorted(subset)
    assert np.array_equal(subset, control_indices(50, 20, seed=3))
    assert not np.array_equal(subset, control_indices(50, 20, seed=4))
    with pytest.raises(ValueError, match="cannot draw 60 of 50"):
        control_indices(50, 60, seed=0)


def test_a_sampler_that_returns_training_images_copies_them_all():
    _, train_features, held_out = _data()
    assert training_images_rate(train_features, held_out, control_indices(300, 50, 0)) == 1.0


def test_held_out_duplicates_of_training_images_make_nothing_a_copy():
    """The documented edge: held-out images that duplicate training images set the threshold
    at 0, and then not even the training images count as copies."""
    _, train_features, held_out = _data()
    held_out = np.concatenate([held_out, train_features[:50]])
    assert training_images_rate(train_features, held_out, np.arange(10)) == 0.0


def test_a_memorising_model_scores_like_the_training_images():
    train, train_features, held_out = _data()
    control = reconstruction_control(
        _Identity(), train[:40], _featurize, train_features, held_out, batch_size=16
    )
    assert control == {"recon_train_copy_rate": 1.0, "recon_train_mse": 0.0}


def test_a_model_that_ignores_its_input_copies_nothing():
    """A constant grey reconstruction: its copy rate is that of the grey image (computed here
    with the metric itself on one image) and its MSE the mean of (x - 0.5)^2."""
    train, train_features, held_out = _data()
    images = train[:40]
    control = reconstruction_control(
        _Constant(), images, _featurize, train_features, held_out, batch_size=16
    )
    grey = _featurize(torch.full((1, *SHAPE), 0.5))[0]
    assert control["recon_train_copy_rate"] == copy_rate(train_features, held_out, grey)
    assert control["recon_train_mse"] == pytest.approx(float(((images - 0.5) ** 2).mean()))
