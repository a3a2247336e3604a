"""Tuning grids (issue 21): the params section, the generated runs file, and the grid runs
trained with selection seeds and scored on the validation split."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from aebench.cli import main
from aebench.config import ParamsError, load_params, parse_params
from aebench.tuning import (
    POINTS_FILE,
    StaleTuning,
    check_points,
    final_runs,
    render_points,
    select_settings,
    tuning_runs,
)

REPO = Path(__file__).resolve().parents[1]


def _with_tuning(raw: dict, grids: dict, seeds: list[int] | None = None) -> dict:
    raw["tuning"] = {"seeds": seeds or [100], "importance_samples": 7, "grids": grids}
    return raw


def test_a_grid_per_variant_with_selection_seeds(raw_params):
    grids = {
        "vae": {"key": "beta", "values": [0.5, 2.0], "by": {"train.lr": [3e-3]}},
        "ae": {"key": "latent_dim", "values": [8, 16], "by": {"train.lr": [3e-3]}},
    }
    params = parse_params(_with_tuning(raw_params, grids, seeds=[100, 101]))
    tuning = params.tuning
    assert tuning.seeds == (100, 101) and tuning.importance_samples == 7
    # vae: 3 betas (its own 1.0 included) × 2 learning rates; ae: latent 4 (own), 8, 16 × 2
    assert len(tuning.points) == 6 + 6
    assert "vae--train_lr-0p003--beta-2" in tuning.points and "vae" in tuning.points
    assert params.train_for("vae--train_lr-0p003--beta-2").lr == 3e-3
    runs = tuning_runs(params)
    assert len(runs) == 12 * 2  # every point × every selection seed, on run.datasets
    assert runs["digits-ae--latent_dim-8-101"] == {
        "dataset": "digits",
        "variant": "ae--latent_dim-8",
        "seed": 101,
    }
    assert params.points_to_run() == ()  # the grids are not studies: `aebench study` skips them


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        ({"seeds": [0], "grids": {"vae": {"key": "beta", "values": [2]}}}, "0 is a reporting seed"),
        (
            {"seeds": [9], "grids": {"nope": {"key": "beta", "values": [2]}}},
            "'nope' is not defined",
        ),
        ({"seeds": [9], "grids": {"ae": {"key": "beta", "values": [2]}}}, "has no setting 'beta'"),
        ({"seeds": [9], "grids": {}}, "tuning.grids"),
        (  # an equal budget: vae's grid has 3 points (its own beta included), ae's 2
            {
                "seeds": [9],
                "grids": {
                    "vae": {"key": "beta", "values": [2, 4]},
                    "ae": {"key": "latent_dim", "values": [8]},
                },
            },
            "the same number of points .* vae 3, ae 2",
        ),
        ({"grids": {"vae": {"key": "beta", "values": [2]}}}, "missing required key 'seeds'"),
    ],
)
def test_a_bad_tuning_section_is_one_message(raw_params, tuning, message):
    raw_params["tuning"] = tuning
    with pytest.raises(ParamsError, match=message):
        parse_params(raw_params)


def test_a_grid_of_a_variant_not_run_is_checked_but_not_tuned(raw_params):
    """A tuned setting is set beside its variant's default runs: a grid whose variant is not in
    run.variants is not tuned, so shortening run.variants never breaks params.yaml."""
    grids = {
        "vae": {"key": "beta", "values": [2.0], "by": {"train.lr": [3e-3]}},
        "dae": {"key": "noise.level", "values": [0.5], "by": {"train.lr": [3e-3]}},
    }
    params = parse_params(_with_tuning(raw_params, grids))
    assert list(params.tuning.grids) == ["vae"] and params.tuning.not_run == ("dae",)
    assert not [p for p in params.tuning.points if p.startswith("dae")]
    assert not [v for v in (*params.study_points, *params.variant_lr) if v.startswith("dae")]
    assert params.train_for("vae--train_lr-0p003--beta-2").lr == 3e-3
    # a study's point that the grid not tuned would also make stays the study's
    raw_params["studies"] = {"noise": {"variants": ["dae"], "key": "noise.level", "values": [0.5]}}
    params = parse_params(_with_tuning(raw_params, grids))
    assert "dae--noise_level-0p5" in params.study_points
    assert "dae--noise_level-0p5" not in params.tuning.points
    del raw_params["studies"]
    # still checked: a grid not tuned keeps the equal budget, and a bad value is refused by name
    grids["dae"]["values"] = [0.5, 0.75]
    with pytest.raises(ParamsError, match=r"the same number of points .* vae 4, dae 6"):
        parse_params(_with_tuning(raw_params, grids))
    grids["dae"]["values"] = [-1.0]
    with pytest.raises(ParamsError, match=r"tuning\.grids"):
        parse_params(_with_tuning(raw_params, grids))


def test_tune_with_no_grid_of_a_run_variant_is_one_message(raw_params, tmp_path, capsys):
    raw = _with_tuning(raw_params, {"dae": {"key": "noise.level", "values": [0.5]}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SystemExit) as exit_status:
        main(["tune", "--params", str(tmp_path / "params.yaml")])
    assert exit_status.value.code == 2
    assert (
        "none of the grids' variants (dae) is in run.variants (ae, vae)" in capsys.readouterr().err
    )
    assert not (tmp_path / "tuning").exists()  # nothing written


def test_readmes_own_model_run_validates_with_the_committed_tuning_section(tmp_path, capsys):
    """README's "your own model" run lists two variants; the committed grids name nine."""
    from tests.test_pipeline import README_EXAMPLE_DATASETS, README_EXAMPLE_VARIANT

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"] = dict(README_EXAMPLE_DATASETS)
    raw["variants"]["learned_prior_vae"] = dict(README_EXAMPLE_VARIANT)
    raw["run"].update(datasets=["tiny_digits"], variants=["ae", "learned_prior_vae"])
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    main(["validate", "--params", str(tmp_path / "params.yaml")])
    out = capsys.readouterr().out
    assert "tuning (`aebench tune`): 1 grid(s)" in out
    assert "not tuned (not in run.variants): dae_gaussian, vae," in out


def test_the_repository_points_file_matches_its_params():
    params = load_params(REPO / "params.yaml")
    check_points(params, REPO)
    assert (REPO / POINTS_FILE).read_text() == render_points(params)


def test_a_stale_points_file_is_refused(raw_params, tmp_path):
    params = parse_params(_with_tuning(raw_params, {"vae": {"key": "beta", "values": [2.0]}}))
    (tmp_path / "tuning").mkdir()
    (tmp_path / POINTS_FILE).write_text("runs: {}\n")
    with pytest.raises(StaleTuning, match="run `aebench tune`"):
        check_points(params, tmp_path)


def test_the_selected_settings_run_with_the_reporting_seeds(raw_params):
    grids = {"vae": {"key": "beta", "values": [2.0]}}
    params = parse_params(_with_tuning(raw_params, grids))
    selected = {
        "digits": {
            "vae": {
                "selected": {
                    "reconstruction": "vae--beta-2",
                    "generation": "vae--beta-2",  # two tasks, one setting: trained once
                    "likelihood": "vae",  # a run variant: its default runs are the row
                }
            }
        }
    }
    runs = final_runs(params, selected)
    assert list(runs) == [f"digits-vae--beta-2-{seed}" for seed in params.run.seeds]


def test_selection_takes_each_tasks_lowest_mean_over_the_selection_seeds(raw_params, tmp_path):
    grids = {"vae": {"key": "beta", "values": [2.0], "by": {"train.lr": [3e-3]}}}
    params = parse_params(_with_tuning(raw_params, grids, seeds=[100, 101]))
    points = params.tuning.grids["vae"].variant_names
    # recon: the lowest mean wins even where one seed alone would pick another point;
    # fd: a NaN seed (a diverged run) rules its point out; nll: the first declared on a tie
    scores = {
        points[0]: ([0.30, 0.10], [5.0, 5.0], [90.0, 90.0]),
        points[1]: ([0.05, 0.40], [1.0, float("nan")], [90.0, 90.0]),
        points[2]: ([0.20, 0.20], [3.0, 3.0], [95.0, 95.0]),
        points[3]: ([0.25, 0.25], [4.0, 4.0], [99.0, 99.0]),
    }
    for point, (mse, fd, nll) in scores.items():
        for i, seed in enumerate((100, 101)):
            path = tmp_path / "validation" / "digits" / point / f"{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            values = {"val_recon_mse": mse[i], "val_sample_gmm_fd": fd[i], "val_nll_iw": nll[i]}
            path.write_text(json.dumps({"scores": values, "validation_images": 180}))
    chosen = select_settings(params, tmp_path)["digits"]["vae"]
    assert chosen["selected"] == {
        "reconstruction": points[0],  # means 0.20, 0.225, 0.20, 0.25: the first of the tie
        "generation": points[2],
        "likelihood": points[0],
    }
    assert chosen["key"] == "beta" and chosen["by"] == "train.lr"
    assert chosen["validation_images"] == 180  # the report states how noisy a selection is
    assert chosen["points"][points[1]]["scores"]["val_recon_mse"] == pytest.approx(0.225)
    by_point = {p: (e["value"], e["by_value"]) for p, e in chosen["points"].items()}
    assert by_point["vae--train_lr-0p003--beta-2"] == (2.0, 3e-3)
    assert by_point["vae"] == (1.0, raw_params["train"]["lr"])
    (tmp_path / "validation" / "digits" / points[3] / "101.json").unlink()
    with pytest.raises(FileNotFoundError, match="run `aebench tune`"):
        select_settings(params, tmp_path)


@pytest.mark.slow
def test_aebench_tune_trains_the_grid_and_scores_it_on_validation(tmp_path):
    from tests.test_dispatch import _git, _run
    from tests.test_pipeline import _copy_repo

    root = _copy_repo(
        tmp_path / "repo", {"datasets": ["digits"], "variants": ["vae"], "seeds": [0]}, 2
    )
    (root / "tuning").mkdir(exist_ok=True)
    (root / "tuning" / "dvc.yaml").write_text((REPO / "tuning" / "dvc.yaml").read_text())
    (root / "tuning" / "report").mkdir()
    (root / "tuning" / "report" / "dvc.yaml").write_text(
        (REPO / "tuning" / "report" / "dvc.yaml").read_text()
    )
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tuning"] = {
        "seeds": [7],
        "importance_samples": 5,
        "grids": {"vae": {"key": "beta", "values": [2.0]}},  # small: the grids' unit tests
    }  # cover `by`; this one follows the runs through DVC and the workers
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "tiny tuning grid")
    # a stale selection from an earlier grid must never train anything: emptied first
    (root / "tuning" / "final.yaml").write_text(
        "final_runs: {digits-vae--beta-9-0: {dataset: digits, variant: vae--beta-9, seed: 0}}\n"
    )
    result = _run(root, sys.executable, "-m", "aebench.cli", "tune", "--workers", "2", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    scored = sorted((root / "tuning" / "validation" / "digits").glob("*/7.json"))
    assert [p.parent.name for p in scored] == ["vae", "vae--beta-2"]
    payload = json.loads(scored[-1].read_text())
    assert payload["importance_samples"] == 5
    assert set(payload["scores"]) == {"val_recon_mse", "val_sample_gmm_fd", "val_nll_iw"}
    assert not (root / "models" / "digits" / "vae" / "7").exists()  # grid runs live in tuning/
    selected = json.loads((root / "tuning" / "selected.json").read_text())["digits"]["vae"]
    assert set(selected["selected"]) == {"reconstruction", "generation", "likelihood"}
    assert set(selected["points"]) == {p.parent.name for p in scored}
    # the second pass: each selected setting with the reporting seed (0), test-evaluated;
    # a selected run variant ("vae") keeps the default pipeline's runs
    chosen = set(selected["selected"].values()) - {"vae"}
    final = yaml.safe_load((root / "tuning" / "final.yaml").read_text())["final_runs"]
    assert {run["variant"] for run in final.values()} == chosen
    import pandas as pd

    table = pd.read_csv(root / "reports" / "tuning" / "runs.csv")  # committed: paired from git
    for point in chosen:
        metrics = json.loads((root / f"tuning/metrics/digits/{point}/0/metrics.json").read_text())
        assert metrics["metrics"]["recon_mse"] > 0
        (value,) = table[table.variant == point].recon_mse
        assert value == metrics["metrics"]["recon_mse"]  # round-trip exact
    assert set(table.variant) == chosen | {"vae"}  # the selected points and the default
    report = (root / "reports" / "tuning" / "README.md").read_text()
    assert "# aebench: tuned on the validation split" in report
    assert report.count("| `vae` |") == 3  # one row per task
    assert len(list((root / "reports" / "tuning" / "figures").glob("digits_vae_*.png"))) == 3
    assert (root / "tuning" / "models" / "digits" / "vae" / "7" / "model.pt").is_file()
    # a fresh clone holds the committed scores, not the grid's models: the second pass alone
    # re-selects from the scores and re-renders, and never re-trains the grid
    for model in (root / "tuning" / "models" / "digits").glob("*/7"):
        shutil.rmtree(model)
    # ... nor the second pass's outputs: they come back (from the run-cache) as they were
    gone = ["tuning/metrics", "metrics/digits/vae/0", "tuning/selected.json", "reports/tuning"]
    before = {
        path: path.read_bytes()
        for name in gone
        for path in [root / name, *(root / name).rglob("*")]
        if path.is_file()
    }
    for name in gone:
        shutil.rmtree(root / name) if (root / name).is_dir() else (root / name).unlink()
    again = _run(root, sys.executable, "-m", "aebench.cli", "tune", "--from-validation", "--quiet")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "train_tuning" not in again.stdout and "validate_tuning" not in again.stdout
    assert not list((root / "tuning" / "models" / "digits").glob("*/7"))
    assert {path: path.read_bytes() for path in before if path.is_file()} == before


def _vae_beta_grid(points: dict[str, tuple[float, dict]], chosen: dict[str, str]) -> dict:
    """tuning/selected.json for one vae grid over beta on digits: point -> (beta, scores)."""
    entries = {p: {"value": value, "scores": scores} for p, (value, scores) in points.items()}
    grid = {"key": "beta", "by": None, "points": entries, "selected": chosen}
    return {"digits": {"vae": grid}}


def test_the_tuned_rows_compare_the_selected_setting_with_the_default(raw_params, tmp_path):
    import pandas as pd

    from aebench.report.stats import Evidence
    from aebench.tuning_report import build_document, heat_map, tuned_rows

    params = parse_params(_with_tuning(raw_params, {"vae": {"key": "beta", "values": [2.0]}}))
    selected = _vae_beta_grid(
        {
            "vae": (1.0, {"val_recon_mse": 0.2, "val_nll_iw": 90.0}),
            "vae--beta-2": (2.0, {"val_recon_mse": 0.1, "val_nll_iw": 95.0}),
        },
        {"reconstruction": "vae--beta-2", "likelihood": "vae"},
    )
    spread = np.array([-0.001, 0.0, 0.001])
    rows = [
        {"dataset": "digits", "variant": v, "seed": s, "recon_mse": m + spread[s], "nll_iw": 90.0}
        for v, m in (("vae", 0.05), ("vae--beta-2", 0.03))
        for s in range(3)
    ]
    evidence = Evidence(pd.DataFrame(rows))
    found = tuned_rows(params, selected, evidence)
    recon, nll = found
    assert recon.point == "vae--beta-2" and recon.diff.estimate == pytest.approx(-0.02)
    assert recon.resolved  # 20× the seed spread
    assert nll.diff is None  # the default was selected: not compared with itself
    doc = build_document(params, selected, found, evidence, tmp_path, tmp_path)
    from aebench.report.markdown import render_markdown

    text = render_markdown(doc)
    assert "the default was selected" in text and "beta = 2" in text
    assert (
        "Tuned `vae` for reconstruction (beta = 2) has lower MSE than its default by 0.02" in text
    )
    assert "resolved after Holm" in text
    png = heat_map(
        selected["digits"]["vae"], "val_recon_mse", "vae--beta-2", "t", tmp_path / "h.png"
    )
    assert png.read_bytes()[:4] == b"\x89PNG"


def _write_metrics(root, variant, seed, mse_per_image):
    folder = root / "metrics" / "digits" / variant / str(seed)
    folder.mkdir(parents=True)
    metrics = {"recon_mse": float(np.mean(mse_per_image))}
    payload = {"environment": {"device_name": "cpu"}, "metrics": metrics}
    (folder / "metrics.json").write_text(json.dumps(payload))
    np.savez(folder / "per_image.npz", recon_mse=np.asarray(mse_per_image))


def test_a_selected_point_that_is_another_run_variant_is_compared(raw_params, tmp_path):
    from aebench.tuning_report import gather_evidence, tuned_rows

    # beta = 2 of the vae grid *is* the run variant beta_vae (same model, same lr), as
    # beta = 4 of a {beta: [0.25, 1, 4], by: {train.lr: [...]}} grid is the repository's beta_vae
    raw_params["variants"]["beta_vae"] = {"family": "vae", "latent_dim": 4, "beta": 2.0}
    raw_params["run"]["variants"] = ["ae", "vae", "beta_vae"]
    raw_params["run"]["seeds"] = [0, 1, 2]
    raw_params["tuning"] = {"seeds": [100], "grids": {"vae": {"key": "beta", "values": [2.0]}}}
    params = parse_params(raw_params)
    assert params.tuning.grids["vae"].variant_names == ("vae", "beta_vae")
    selected = _vae_beta_grid(
        {"vae": (1.0, {"val_recon_mse": 0.05}), "beta_vae": (2.0, {"val_recon_mse": 0.03})},
        {"reconstruction": "beta_vae"},
    )
    assert final_runs(params, selected) == {}  # not retrained: its default-pipeline runs are used
    rng = np.random.default_rng(0)
    for seed in (0, 1, 2):
        _write_metrics(tmp_path, "vae", seed, 0.05 + 0.01 * rng.random(50))
        _write_metrics(tmp_path, "beta_vae", seed, 0.03 + 0.01 * rng.random(50))
    (row,) = tuned_rows(params, selected, gather_evidence(params, selected, tmp_path))
    assert row.default is not None
    assert row.tuned is not None, "the selected run variant's test metrics were never loaded"
    assert row.diff is not None and row.diff.estimate < 0


def _two_family_selection(params) -> dict:
    """ae (latent_dim) and vae (beta) grids on digits, each selecting its non-default point
    for reconstruction."""
    ae_point, vae_point = (params.tuning.grids[v].variant_names[1] for v in ("ae", "vae"))
    grids = {}
    for variant, key, value, point in (
        ("ae", "latent_dim", 8, ae_point),
        ("vae", "beta", 2.0, vae_point),
    ):
        points = {
            variant: {"value": None, "scores": {"val_recon_mse": 0.2}},
            point: {"value": value, "scores": {"val_recon_mse": 0.1}},
        }
        grids[variant] = {
            "key": key,
            "by": None,
            "points": points,
            "selected": {"reconstruction": point},
            "validation_images": 180,
        }
    return {"digits": grids}


def _family_runs(means: dict[str, float], capped: set[str] = frozenset()):
    """Three seeds per run around ``means``, with per-image values (50 images) behind each."""
    import pandas as pd

    from aebench.report.stats import Evidence

    spread = np.array([-0.001, 0.0, 0.001])
    rows, per_image = [], {}
    for variant, mean in means.items():
        for seed in range(3):
            images = mean + spread[seed] + np.linspace(-0.002, 0.002, 50)
            per_image[("digits", variant, seed)] = {"recon_mse": images}
            row = {"dataset": "digits", "variant": variant, "seed": seed}
            rows.append(
                row | {"recon_mse": images.mean(), "stopped_at_cap": float(variant in capped)}
            )
    return Evidence(pd.DataFrame(rows), per_image)


def test_the_families_are_ranked_at_their_selected_settings(raw_params, tmp_path):
    from aebench.report.markdown import render_markdown
    from aebench.tuning_report import build_document, family_comparison, tuned_rows

    grids = {"ae": {"key": "latent_dim", "values": [8]}, "vae": {"key": "beta", "values": [2.0]}}
    params = parse_params(_with_tuning(raw_params, grids))
    selected = _two_family_selection(params)
    ae_point, vae_point = (selected["digits"][v]["selected"]["reconstruction"] for v in grids)
    # at the defaults ae is lower; at the selected settings vae is, by 20× the seed spread
    evidence = _family_runs({"ae": 0.04, "vae": 0.05, ae_point: 0.035, vae_point: 0.015})
    tables, found = family_comparison(evidence, "digits", selected["digits"])
    (table,) = tables
    assert [row[0].text for row in table.rows] == ["ae", "vae"]  # labelled by family
    ae_row, vae_row = table.rows
    assert vae_row[1].text == "beta = 2" and vae_row[2].best and not ae_row[2].best
    assert vae_row[2].text.startswith("0.015")  # the selected point's runs, not the default's
    assert (ae_row[3].text[:4], vae_row[3].text[:4]) == ("0.04", "0.05")  # defaults, unranked
    assert not (ae_row[3].best or vae_row[3].best)
    (finding,) = found
    assert (finding.best, finding.runner_up) == ("vae", "ae")
    assert finding.gain.covers_images  # the per-image arrays followed the relabelling
    assert finding.gain.estimate == pytest.approx(0.02)
    rows = tuned_rows(params, selected, evidence)
    text = render_markdown(build_document(params, selected, rows, evidence, tmp_path, tmp_path))
    assert "- **vae** has the lowest MSE of the families at their tuned settings" in text
    assert "on 180 validation images with 1 training seed" in text
    assert ("Not tuned: the full-MNIST section" in text) == (params.full_mnist is not None)


def test_two_families_selecting_the_same_run_variant_both_stay(raw_params):
    from aebench.tuning_report import family_evidence

    grids = {"ae": {"key": "latent_dim", "values": [8]}, "vae": {"key": "beta", "values": [2.0]}}
    selected = _two_family_selection(parse_params(_with_tuning(raw_params, grids)))["digits"]
    for grid in selected.values():  # e.g. a run variant that both grids contain
        grid["selected"]["reconstruction"] = "shared"
    evidence = _family_runs({"shared": 0.02, "ae": 0.04})
    relabelled = family_evidence(evidence, "digits", selected, "reconstruction")
    assert list(relabelled.runs.variant) == ["ae"] * 3 + ["vae"] * 3
    assert set(relabelled.samples("digits", "recon_mse")) == {"ae", "vae"}
    assert ("digits", "vae", 2) in relabelled.per_image


def test_a_capped_family_is_shown_never_best_and_its_seeds_named(raw_params, tmp_path):
    from aebench.report.markdown import render_markdown
    from aebench.tuning_report import build_document, family_comparison, tuned_rows

    grids = {"ae": {"key": "latent_dim", "values": [8]}, "vae": {"key": "beta", "values": [2.0]}}
    params = parse_params(_with_tuning(raw_params, grids))
    selected = _two_family_selection(params)
    vae_point = selected["digits"]["vae"]["selected"]["reconstruction"]
    means = {"ae": 0.04, "vae": 0.05, selected["digits"]["ae"]["selected"]["reconstruction"]: 0.035}
    evidence = _family_runs(means | {vae_point: 0.015}, capped={vae_point})
    (table, none_best), found = family_comparison(evidence, "digits", selected["digits"])
    assert not any(cell.best for row in table.rows for cell in row)  # one rankable row left
    assert any("vae (3 of 3 seeds stopped at the epoch cap)" in note for note in table.notes)
    assert found == [] and "none is named best" in none_best.text
    rows = tuned_rows(params, selected, evidence)
    text = render_markdown(build_document(params, selected, rows, evidence, tmp_path, tmp_path))
    assert "Unfinished models (stopped at the epoch cap): `vae` at beta = 2 (3 of 3 seeds" in text
    assert "over the 0 findings" not in text
    # the tuned-vs-default claim on the capped side says that it is unfinished
    assert "(tuned: 3 of 3 seeds stopped at the epoch cap: an unfinished model)" in text
