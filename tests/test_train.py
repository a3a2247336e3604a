import numpy as np
import pandas as pd
import pytest
import torch

from aebench.config import ParamsError, TrainConfig, parse_params
from aebench.runtime import pick_device
from aebench.train import train_model, write_history

CFG = TrainConfig(epochs=3, batch_size=32, lr=1e-3, device="cpu")


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(123)
    data = torch.rand(160, 1, 8, 8)
    return data[:128], data[128:]


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("family", ["dae", "dvae"])  # both draw corruption and/or eps noise
def test_same_seed_gives_bit_identical_weights(raw_params, images, family):
    spec = parse_params(raw_params).variant(family)
    first, _ = train_model(spec, *images, CFG, seed=5, progress=False)
    second, _ = train_model(spec, *images, CFG, seed=5, progress=False)
    other, _ = train_model(spec, *images, CFG, seed=6, progress=False)
    a, b, c = _weights(first), _weights(second), _weights(other)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_best_checkpoint_is_the_lowest_validation_objective(raw_params, images):
    spec = parse_params(raw_params).variant("vae")
    cfg = TrainConfig(epochs=6, batch_size=32, lr=3e-2, device="cpu")  # lr high enough to wobble
    model, result = train_model(spec, *images, cfg, seed=0, progress=False)
    history = pd.DataFrame(result.history)
    assert list(history.columns) == [
        "epoch",
        "train_loss",
        "train_recon",
        "train_kl",
        "val_loss",
        "val_recon",
        "val_kl",
    ]
    assert result.best_epoch == int(history.loc[history.val_loss.idxmin(), "epoch"])
    # the returned weights reproduce the best validation loss (same validation draws)
    from aebench.train import VALIDATION_SEED_OFFSET, batch_objective

    generator = torch.Generator().manual_seed(0 + VALIDATION_SEED_OFFSET)
    again = batch_objective(model, images[1], 32, generator)["loss"]
    assert again == pytest.approx(result.best_val_loss, rel=1e-5)


def test_training_lowers_the_loss(raw_params, images):
    spec = parse_params(raw_params).variant("ae")
    _, result = train_model(spec, *images, TrainConfig(epochs=5, batch_size=16), 0, progress=False)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_history_csv_round_trips(tmp_path):
    rows = [
        {"epoch": 1, "train_loss": 2.5, "val_loss": 2.0},
        {"epoch": 2, "train_loss": 1.5, "val_loss": 1.25},
    ]
    write_history(tmp_path / "h" / "0.csv", rows)
    frame = pd.read_csv(tmp_path / "h" / "0.csv")
    assert np.allclose(frame.val_loss, [2.0, 1.25])
    assert [p.name for p in (tmp_path / "h").iterdir()] == ["0.csv"]


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ParamsError, match="no CUDA device is available"):
            pick_device("cuda")


def test_dynamic_binarisation_trains_on_binary_batches(raw_params, images, monkeypatch):
    raw_params["variants"]["vae"]["binarize"] = "dynamic"
    spec = parse_params(raw_params).variant("vae")
    seen = []
    from aebench.models.vae import VariationalAutoencoder

    loss_terms = VariationalAutoencoder.loss_terms

    def recording(self, x, generator):
        seen.append(bool(((x == 0) | (x == 1)).all()))
        return loss_terms(self, x, generator)

    monkeypatch.setattr(VariationalAutoencoder, "loss_terms", recording)
    _, result = train_model(spec, *images, CFG, seed=0, progress=False)
    assert seen and all(seen)  # every training and validation batch is binary
    assert all(np.isfinite(row["val_loss"]) for row in result.history)
