"""What the full-MNIST report publishes: its literature paragraph, protocol list, cross-dataset
list and header say each number once, true, and of the section's own runs."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd

from aebench.full_mnist_report import (
    LiteratureRow,
    cross_dataset,
    literature_blocks,
    protocol_differences,
)
from aebench.report.document import Paragraph
from aebench.report.intervals import Sample
from aebench.report.stats import Evidence
from aebench.report.tables import metric_table
from aebench.spec import TrainConfig


def _runs(values: dict[tuple[str, str], list[float]], key: str, capped=()) -> pd.DataFrame:
    rows = []
    for (dataset, variant), seeds in values.items():
        for seed, value in enumerate(seeds):
            at_cap = float((dataset, variant) in capped)
            rows.append(
                {
                    "dataset": dataset,
                    "variant": variant,
                    "seed": seed,
                    key: value,
                    "stopped_at_cap": at_cap,
                }
            )
    return pd.DataFrame(rows)


def _ordering(rows: list[LiteratureRow]) -> str:
    return [b for b in literature_blocks(rows, 5000, TrainConfig()) if isinstance(b, Paragraph)][
        -1
    ].text


def _row(variant: str, published: float, seeds, images=None) -> LiteratureRow:
    return LiteratureRow(variant, published, "B", Sample(np.asarray(seeds, float), images), 0, 0, 0)


def test_the_iwae_minus_vae_sentence_states_its_interval_once_and_what_it_covers():
    rng = np.random.default_rng(0)
    base = rng.normal(90, 20, 10_000)
    vae = _row("burda_vae", 86.76, [89.8, 90.1, 89.9], base)
    iwae = _row("burda_iwae", 85.54, [88.9, 89.0, 89.3], base - 0.9 + rng.normal(0, 1, 10_000))
    text = _ordering([vae, iwae])
    assert text.count("95% CI") == 1  # once
    assert "paired" in text and "10,000 test images" in text


def test_the_iwae_minus_vae_sentence_never_publishes_nan():
    vae = _row("burda_vae", 86.76, [89.8, 90.1, 89.9])
    iwae = _row("burda_iwae", 85.54, [])  # its runs not there (or every NLL NaN)
    text = _ordering([vae, iwae])
    assert "nan" not in text.lower()
    assert "spans 0" not in text  # there is no interval to span anything


def test_the_passes_are_stated_with_true_arithmetic():
    passes = protocol_differences(TrainConfig())[0]
    assert "3^8 = 3,280" not in passes  # 3^8 = 6,561; Σ_{i=0..7} 3^i = 3,280
    assert sum(3**i for i in range(8)) == 3280 and "3,280" in passes


def test_a_sign_change_line_states_each_interval_once():
    small = Evidence(
        _runs({("s", "ae"): [0.01, 0.011, 0.012], ("s", "vae"): [0.05, 0.051, 0.052]}, "recon_mse")
    )
    full = Evidence(
        _runs({("f", "ae"): [0.05, 0.051, 0.052], ("f", "vae"): [0.01, 0.011, 0.012]}, "recon_mse")
    )
    found = cross_dataset(small, "s", full, "f", ["ae", "vae"])
    assert found and all(d.text.count("95% CI") == 2 for d in found)  # one per dataset


def test_the_cross_dataset_list_never_names_a_capped_row_best():
    """The quick report never bolds a run stopped at its cap (eligibility.unrankable); nor
    does the section's cross-dataset list name it best."""
    small_values = {("s", "ae"): [0.010, 0.011, 0.012], ("s", "vae"): [0.05, 0.051, 0.052]}
    small = Evidence(_runs(small_values, "recon_mse", capped={("s", "ae")}))
    full = Evidence(
        _runs({("f", "ae"): [0.05, 0.051, 0.052], ("f", "vae"): [0.01, 0.011, 0.012]}, "recon_mse")
    )
    quick_table = metric_table(small, "s", ["recon_mse"])
    assert "ae" not in [r[0].text for r in quick_table.rows if r[1].best]  # the quick report
    found = cross_dataset(small, "s", full, "f", ["ae", "vae"])
    assert not any("best on s `ae`" in d.text for d in found)


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_the_pipelines_own_outputs_are_no_uncommitted_code_change(tmp_path, monkeypatch):
    """full_mnist/dvc.lock and settings/ are rewritten by the stages before a report runs:
    the header must not then say '(with uncommitted changes)'."""
    from aebench.report.environment import git_state

    (tmp_path / "full_mnist").mkdir()
    (tmp_path / "settings").mkdir()
    (tmp_path / "full_mnist" / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "settings" / "inputs.json").write_text("{}\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "-c", "user.email=r@x", "-c", "user.name=r", "add", ".")
    _git(tmp_path, "-c", "user.email=r@x", "-c", "user.name=r", "commit", "-qm", "c")
    (tmp_path / "full_mnist" / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (tmp_path / "settings" / "inputs.json").write_text('{"files": {}}\n')
    monkeypatch.chdir(tmp_path)
    assert git_state().endswith("(clean)")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state().endswith("(with uncommitted changes)")


def test_the_sections_fingerprint_is_of_its_own_lock(tmp_path):
    """The header's results fingerprint hashed the top-level dvc.lock (the quick run's), not
    the section's full_mnist/dvc.lock."""
    from aebench.report.environment import pipeline_lock_hash

    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "stages:\n  train:\n    outs:\n    - path: full_mnist/models/a\n      md5: aa\n"
        "    - path: full_mnist/timings/train/a.json\n      md5: t1\n"
    )
    first = pipeline_lock_hash(lock)
    lock.write_text(lock.read_text().replace("t1", "t2"))  # only a wall-clock timing changed
    assert pipeline_lock_hash(lock) == first


def _nll_runs(k_of: dict[str, int]) -> Evidence:
    rows = [
        {
            "dataset": "f",
            "variant": v,
            "seed": s,
            "nll_iw": 90.0 + s,
            "recon_mse": 0.01 + s,
            "nll_importance_samples": float(k),
            "stopped_at_cap": 0.0,
        }
        for v, k in k_of.items()
        for s in range(3)
    ]
    return Evidence(pd.DataFrame(rows))


def test_nlls_with_another_number_of_importance_samples_are_not_ranked_together():
    from aebench.report.eligibility import unrankable

    # the bound tightens with K: the K most variants used is ranked, the others shown
    three_to_one = _nll_runs({"vae": 1000, "iwae": 1000, "wae": 1000, "burda_vae": 5000})
    reasons = unrankable(three_to_one, "f", "nll_iw")
    assert list(reasons) == ["burda_vae"] and "K = 5,000" in reasons["burda_vae"]
    assert unrankable(three_to_one, "f", "recon_mse") == {}  # only the NLL depends on K
    # a tie goes to the larger K, the tighter estimate
    tie = _nll_runs({"vae": 1000, "iwae": 1000, "burda_vae": 5000, "burda_iwae": 5000})
    assert set(unrankable(tie, "f", "nll_iw")) == {"vae", "iwae"}
    assert unrankable(_nll_runs({"vae": 1000, "iwae": 1000}), "f", "nll_iw") == {}
