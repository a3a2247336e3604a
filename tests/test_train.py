import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from aebench.config import ParamsError, TrainConfig, parse_params
from aebench.runtime import pick_device
from aebench.train import EarlyStopping, convergence_record, train_model, write_history

CFG = TrainConfig(max_epochs=3, batch_size=32, lr=1e-3, device="cpu")


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
    cfg = TrainConfig(
        max_epochs=6, batch_size=32, lr=3e-2, device="cpu"
    )  # lr high enough to wobble
    model, result = train_model(spec, *images, cfg, seed=0, progress=False)
    history = pd.DataFrame(result.history)
    assert list(history.columns) == [
        "epoch",
        "lr",
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
    _, result = train_model(
        spec, *images, TrainConfig(max_epochs=5, batch_size=16), 0, progress=False
    )
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


def test_early_stopping_counts_only_improvements_beyond_min_delta():
    stopping = EarlyStopping(patience=3, min_delta=0.1)
    # 10 -> 9 is an improvement; then three epochs creeping down by 0.03 each are not
    assert [stopping.update(v) for v in (10.0, 9.0, 8.97, 8.94, 8.91)] == [
        False,
        False,
        False,
        False,
        True,
    ]
    again = EarlyStopping(patience=3, min_delta=0.1)
    # a gain beyond min_delta (8.9 -> 8.7 vs reference 9.0) resets the count
    assert [again.update(v) for v in (9.0, 8.95, 8.7, 8.69, 8.68, 8.67)] == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]


def test_training_stops_by_patience_and_records_why(raw_params, images):
    spec = parse_params(raw_params).variant("ae")
    # a learning rate too small to move the objective by min_delta: patience must end it
    cfg = TrainConfig(max_epochs=50, patience=3, min_delta=0.01, lr=1e-9, batch_size=32)
    _, result = train_model(spec, *images, cfg, seed=0, progress=False)
    assert result.convergence.stop_reason == "patience"
    assert result.convergence.stop_epoch == 4 == len(result.history)
    assert result.convergence.as_dict()["stopped_at_cap"] == 0.0


def test_a_run_that_reaches_the_cap_says_so(raw_params, images):
    spec = parse_params(raw_params).variant("ae")
    cfg = TrainConfig(max_epochs=3, patience=10, batch_size=32)
    _, result = train_model(spec, *images, cfg, seed=0, progress=False)
    record = result.convergence.as_dict()
    assert (record["stop_reason"], record["stop_epoch"], record["stopped_at_cap"]) == (
        "cap",
        3,
        1.0,
    )


def test_plateau_schedule_lowers_the_learning_rate(raw_params, images):
    spec = parse_params(raw_params).variant("ae")
    cfg = TrainConfig(
        max_epochs=8, patience=6, lr_plateau_patience=1, min_delta=1e6, lr=1e-3, batch_size=32
    )  # no epoch can improve by 1e6 nats: the rate halves every second epoch
    _, result = train_model(spec, *images, cfg, seed=0, progress=False)
    rates = [row["lr"] for row in result.history]
    assert rates[0] == 1e-3 and rates[-1] < rates[0] / 2
    assert all(b <= a for a, b in itertools.pairwise(rates))


def test_convergence_record_measures_the_gain_before_the_best_epoch():
    history = [{"epoch": e, "lr": 1e-3, "val_loss": 100.0 - e} for e in range(1, 16)] + [
        {"epoch": 16, "lr": 1e-3, "val_loss": 90.0}
    ]
    record = convergence_record(history, best_epoch=15, stop_reason="patience", min_delta=0.01)
    assert record.best_val_loss == 85.0
    assert record.val_gain_10 == pytest.approx(10.0)  # epoch 5 (95) to epoch 15 (85)
    assert record.val_gain_10_rel == pytest.approx(10.0 / 85.0)
    assert record.stop_epoch == 16
    assert not record.converged  # still falling 1 nat per epoch: early-stopped, not converged
    early = convergence_record(history[:4], best_epoch=3, stop_reason="cap", min_delta=0.01)
    assert early.val_gain_10 == pytest.approx(2.0)  # fewer than 10 epochs: from epoch 1


def test_convergence_rule_and_learning_rate_cuts_are_read_from_the_history():
    rates = [1e-3] * 5 + [5e-4] * 5 + [2.5e-4] * 6
    flat = [{"epoch": e, "lr": rates[e - 1], "val_loss": 80.0 - 0.005 * e} for e in range(1, 17)]
    record = convergence_record(flat, best_epoch=16, stop_reason="patience", min_delta=0.01)
    assert record.converged  # 0.05 nats over 10 epochs: under 10 × min_delta
    assert record.lr_reductions == 2
    capped = convergence_record(flat, best_epoch=16, stop_reason="cap", min_delta=0.01)
    assert not capped.converged  # a run at the cap is never called converged


@pytest.mark.parametrize("variant", ["ae", "dae"])
def test_the_gap_is_zero_when_the_training_images_are_the_validation_images(
    raw_params, images, variant
):
    """Scored the same way on the same images, the kept model's training-subset objective
    equals its validation objective (for a DAE too: the same corruption draws, in order)."""
    spec = parse_params(raw_params).variant(variant)
    same = images[1]
    _, result = train_model(spec, same, same, CFG, seed=0, progress=False)
    record = result.convergence.as_dict()
    # the subset is a permutation of the same 32 images: only the draws' order differs for
    # the DAE, so its gap is small rather than 0; the AE's is 0 to rounding
    tolerance = 1e-4 if variant == "ae" else 0.05 * abs(record["best_val_loss"])
    assert record["val_train_gap"] == pytest.approx(0.0, abs=tolerance)


def test_the_gap_shows_an_overfitted_model(raw_params, images):
    """Trained on 16 images and validated on others, the kept model fits its own images better."""
    spec = parse_params(raw_params).variant("ae")
    cfg = TrainConfig(max_epochs=40, patience=40, batch_size=16, lr=1e-2, device="cpu")
    _, result = train_model(spec, images[0][:16], images[1], cfg, seed=0, progress=False)
    record = result.convergence.as_dict()
    assert record["val_train_gap"] > 0
    assert record["train_subset_loss"] < record["best_val_loss"]
