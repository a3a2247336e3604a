"""The report's content and Markdown render from synthetic evaluation files: no training.

The fixture writes what the evaluate stage writes per run (``metrics.json`` and
``per_image.npz`` whose arrays average to the metrics), with differences chosen so that each
verdict is known in advance.
"""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from aebench.config import RunConfig, parse_params
from aebench.report.content import ReportInputs, build_report
from aebench.report.document import Document
from aebench.report.findings import findings_text
from aebench.report.glossary import SAMPLER_MEANING, describe, glossary_entries
from aebench.report.markdown import render_markdown
from aebench.report.results import (
    aggregate,
    flat_metrics,
    load_per_image,
    load_runs,
    run_path,
)
from aebench.report.stats import Evidence
from aebench.report.tables import format_value
from aebench.report.variants import variant_blocks

RUN = RunConfig(datasets=("digits",), variants=("dae", "vae", "ae", "gvae"), seeds=(0, 1, 2))
N_IMAGES = 40
STATS = ("fd", "precision", "recall", "density", "coverage", "class_coverage", "class_kl")
REFERENCE = {"split": "val", "count": 500} | {s: 0.5 for s in STATS} | {"copy_rate": 0.05}
EVALUATORS = {"digits": {"test_accuracy": 0.985, "reference": REFERENCE}}
BINARIZE = {"dae": "none", "vae": "dynamic", "ae": "none", "gvae": "none"}
SHIFT = (-1.0, 0.0, 1.0)  # seed s moves a variant by SHIFT[s] × its seed sd

# key -> per-image base values shared by every model (image difficulty)
_BASE_RNG = np.random.default_rng(0)
BASES = {
    "recon_mse": _BASE_RNG.uniform(0.01, 0.03, N_IMAGES),
    "robust_masking_mse_corrupted": _BASE_RNG.uniform(0.01, 0.05, N_IMAGES),
    "nll_iw": _BASE_RNG.uniform(80.0, 100.0, N_IMAGES),
    "neg_elbo": _BASE_RNG.uniform(85.0, 105.0, N_IMAGES),
    "gaussian_nll_iw": _BASE_RNG.uniform(-900.0, -800.0, N_IMAGES),
    "gaussian_neg_elbo": _BASE_RNG.uniform(-890.0, -790.0, N_IMAGES),
}
# variant -> key -> (offset, seed sd); per-image keys get BASES + offset + shift
PER_IMAGE = {
    "dae": {"recon_mse": (0.0, 0.001), "robust_masking_mse_corrupted": (0.0, 1e-4)},
    "vae": {
        "recon_mse": (0.0005, 0.003),  # within the noise of dae: not resolved
        "robust_masking_mse_corrupted": (0.03, 1e-4),  # clearly worse
        "nll_iw": (0.0, 0.5),
        "neg_elbo": (0.0, 0.5),
    },
    "ae": {"recon_mse": (0.5, 0.01), "robust_masking_mse_corrupted": (0.48, 0.0)},
    "gvae": {
        "recon_mse": (0.02, 0.001),
        "robust_masking_mse_corrupted": (0.01, 1e-4),
        "gaussian_nll_iw": (0.0, 1.0),
        "gaussian_neg_elbo": (0.0, 1.0),
    },
}
SCALARS = {
    "dae": {
        "sample_gmm_fd": (10.0, 1.0),
        "sample_gmm_density": (1.5, 0.01),  # the largest density: must not be bold
        "sample_gmm_coverage": (0.5, 0.01),
        "sample_gmm_class_coverage": (1.0, 0.0),
        "sample_gmm_copy_rate": (0.05, 0.001),
        "sample_chain_fd": (12.0, 1.0),
        "robust_masking_mse_degradation": (0.2, 0.01),  # the smallest: never bold
        "parameters": (1000.0, 0.0),
    },
    "vae": {
        "sample_gmm_fd": (5.0, 0.1),
        "sample_gmm_density": (1.02, 0.01),  # nearest 1, and the best coverage: bold
        "sample_gmm_coverage": (0.9, 0.01),
        "sample_gmm_class_coverage": (1.0, 0.0),
        "sample_gmm_copy_rate": (0.2, 0.001),
        "sample_prior_fd": (7.0, 0.0),
        "robust_masking_mse_degradation": (1.5, 0.01),
        "nll_importance_samples": (1000.0, 0.0),
        "parameters": (1200.0, 0.0),
    },
    "ae": {
        "sample_gmm_fd": (30.0, 0.0),
        "sample_gmm_density": (0.6, 0.01),
        "sample_gmm_coverage": (0.95, 0.01),  # capped (seed 1): never bold, though the highest
        "sample_gmm_class_coverage": (1.0, 0.0),
        "sample_gmm_copy_rate": (0.01, 0.001),
        "robust_masking_mse_degradation": (0.9, 0.01),
        "parameters": (900.0, 0.0),
    },
    "gvae": {
        "sample_gmm_fd": (20.0, 1.0),
        "sample_gmm_density": (0.9, 0.01),
        "sample_gmm_coverage": (0.6, 0.01),
        "sample_gmm_class_coverage": (0.3, 0.0),  # under half of the classes: never ranked
        "sample_gmm_copy_rate": (0.03, 0.001),
        "robust_masking_mse_degradation": (0.5, 0.01),
        "nll_importance_samples": (1000.0, 0.0),
        "parameters": (1200.0, 0.0),
    },
}


def _training(variant: str, seed: int) -> dict[str, float]:
    at_cap = variant == "ae" and seed == 1
    return {
        "best_epoch": 30.0 + seed,
        "stop_epoch": 100.0 if at_cap else 40.0 + seed,
        "stopped_at_cap": 1.0 if at_cap else 0.0,
        "val_gain_10": 0.5 + 0.1 * seed,
        "val_gain_10_rel": 0.005,
        "converged": 0.0 if at_cap else 1.0,
        "lr_reductions": 2.0 + seed,
        "val_train_gap": 4.0 if variant == "ae" else 1.0,
    }


def write_runs(root, per_image=PER_IMAGE, scalars=SCALARS, run=RUN):
    """metrics.json + per_image.npz per run, as the evaluate stage writes them."""
    rng = np.random.default_rng(1)
    for variant in run.variants:
        for seed in run.seeds:
            arrays = {
                key: BASES[key] + offset + SHIFT[seed] * sd + rng.normal(0, 1e-5, N_IMAGES)
                for key, (offset, sd) in per_image.get(variant, {}).items()
            }
            metrics = {key: float(values.mean()) for key, values in arrays.items()}
            for key, (offset, sd) in scalars.get(variant, {}).items():
                metrics[key] = offset + SHIFT[seed] * sd
            metrics |= _training(variant, seed)
            chain = {k: metrics.pop(k) for k in list(metrics) if k.startswith("sample_chain_")}
            if chain:  # the chain stage's file, which the report joins to the run
                chained = run_path(root / "chain", "digits", variant, seed)
                chained.parent.mkdir(parents=True)
                chained.write_text(json.dumps({"metrics": chain}))
            path = run_path(root, "digits", variant, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"run": {}, "environment": {"device_name": "cpu"}, "metrics": metrics}
            path.write_text(json.dumps(payload))
            np.savez_compressed(path.with_name("per_image.npz"), **arrays)


@pytest.fixture
def evidence(tmp_path) -> Evidence:
    write_runs(tmp_path)
    runs = load_runs(tmp_path, RUN, [tmp_path / "chain"])
    return Evidence(runs, load_per_image(tmp_path, runs))


def _inputs(evidence, evaluators=EVALUATORS):
    return ReportInputs(
        runs=evidence.runs,
        evaluators=evaluators,
        seeds=RUN.seeds,
        environment=["env"],
        per_image=evidence.per_image,
        binarize=BINARIZE,
    )


@pytest.fixture
def markdown(evidence) -> str:
    return render_markdown(build_report(_inputs(evidence)))


def _section(text: str, start: str, end: str = "\n### ") -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def _row(table: str, variant: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {variant} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


# --- aggregation and metrics.json --------------------------------------------------------------


def test_aggregate_gives_mean_and_sample_std_over_seeds(evidence):
    summary = aggregate(evidence.runs)
    assert summary.loc[("digits", "dae"), ("sample_gmm_fd", "mean")] == pytest.approx(10.0)
    assert summary.loc[("digits", "dae"), ("sample_gmm_fd", "std")] == pytest.approx(1.0)
    assert list(summary.index.get_level_values(1)) == ["dae", "vae", "ae", "gvae"]


def test_flat_metrics_carry_counts_reference_and_convergence(evidence):
    flat = flat_metrics(aggregate(evidence.runs), EVALUATORS)
    assert flat["digits.vae.sample_prior_fd.mean"] == pytest.approx(7.0)
    assert flat["digits.vae.sample_prior_fd.count"] == 3.0
    assert "digits.dae.nll_iw.mean" not in flat and "digits.dae.nll_iw.count" not in flat
    assert flat["digits.evaluator.reference_fd"] == 0.5
    assert flat["digits.evaluator.reference_count"] == 500.0
    assert "digits.evaluator.reference_split" not in flat
    assert not any("floor" in key for key in flat)
    assert flat["digits.ae.stopped_at_cap.mean"] == pytest.approx(1 / 3)
    assert flat["digits.dae.val_gain_10.std"] == pytest.approx(0.1)
    assert flat["digits.dae.best_epoch.mean"] == pytest.approx(31.0)
    assert not any("seconds" in key for key in flat)
    assert all(isinstance(v, float) and not math.isnan(v) for v in flat.values())


def test_per_image_values_must_match_the_metrics(tmp_path):
    write_runs(tmp_path)
    runs = load_runs(tmp_path, RUN)
    path = run_path(tmp_path, "digits", "vae", 1).with_name("per_image.npz")
    with np.load(path) as stored:
        arrays = dict(stored)
    np.savez_compressed(path, **(arrays | {"recon_mse": arrays["recon_mse"] + 0.01}))
    with pytest.raises(ValueError, match=r"the mean of recon_mse is .* but metrics.json says"):
        load_per_image(tmp_path, runs)
    np.savez_compressed(path, **(arrays | {"recon_mse": arrays["recon_mse"][:-1]}))
    with pytest.raises(ValueError, match="every model must be scored on the same test images"):
        load_per_image(tmp_path, runs)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="evaluate@digits-vae-1 has not run"):
        load_per_image(tmp_path, runs)


def test_missing_run_names_the_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="evaluate@digits-dae-0 has not run"):
        load_runs(tmp_path, RUN)


# --- findings ----------------------------------------------------------------------------------


def test_findings_state_the_difference_with_its_interval(evidence):
    items, rule = findings_text(evidence, "digits", EVALUATORS["digits"])
    recon = next(i for i in items if "reconstruction MSE" in i)
    assert re.fullmatch(  # unresolved: the verdict first, no superlative
        r"\*\*dae\*\* and vae are not resolved on the reconstruction MSE: dae is 0\.000\d+ "
        r"lower, 95% CI −0\.\d+ to 0\.\d+: not resolved with 3 seeds\.",
        recon,
    ), recon
    masking = next(i for i in items if "*masking*" in i)
    assert masking.startswith("**dae** is the most robust to *masking* corruption")
    assert re.search(r": 0\.03\d* lower than gvae|: 0\.01\d* lower than gvae", masking), masking
    assert "; resolved (Holm-adjusted p = " in masking
    samples = next(i for i in items if "Fréchet distance" in i)
    assert samples.startswith("**vae** with the `gmm` sampler has the lowest Fréchet distance")
    assert "than dae (`chain`)" not in samples and "than dae (`gmm`)" in samples
    assert "over training seeds only (FD has no per-image values); resolved" in samples
    assert "validation split (reference, n=500) scores 0.5" in samples
    assert not any("likelihood" in i.lower() and "%" in i for i in items)
    assert rule.startswith(
        f"A finding is resolved only when its Holm-adjusted p < 0.05 over the {len(items)} "
    )
    assert rule.endswith(".") and not re.search(r"\.\s+[A-Z]", rule)  # one sentence


def test_holm_can_withhold_a_claim_the_interval_alone_would_make(evidence):
    from aebench.report.findings import Finding, sentence
    from aebench.report.intervals import difference_from_moments

    gain = difference_from_moments(0.02, 5e-5, 3, 0.0, 5e-5, 3)  # p ≈ 0.03: CI excludes 0
    assert gain.excludes_zero and 0.01 < gain.p < 0.05
    finding = Finding("has the lowest MSE", describe("recon_mse"), "a", "b", gain)
    text = sentence(finding, adjusted=min(1.0, 3 * gain.p), family=3)
    assert "not resolved after Holm's adjustment over 3 findings" in text
    assert "; resolved" not in text
    assert text.startswith("**a** and b are not resolved on MSE")  # no superlative
    assert "has the lowest" not in text


def test_no_unresolved_finding_opens_with_a_superlative(evidence):
    items, _ = findings_text(evidence, "digits", EVALUATORS["digits"])
    superlative = re.compile(r"\b(most|lowest|highest|best)\b")
    for item in items:
        opening = item.split(":")[0]
        if "; resolved (" in item:
            assert superlative.search(opening), item
        else:
            assert "are not resolved on" in opening and not superlative.search(opening), item


def test_nats_stay_nats(evidence):
    items, _ = findings_text(evidence, "digits", EVALUATORS["digits"])
    nll = [i for i in items if "NLL" in i]
    assert nll == []  # one Bernoulli and one Gaussian model: nothing to compare
    two = Evidence(evidence.runs.assign(variant=evidence.runs.variant.replace("gvae", "vae2")))
    assert two.samples("digits", "gaussian_nll_iw").keys() == {"vae2"}


# --- tables ------------------------------------------------------------------------------------


def test_headline_marks_best_and_lists_every_unresolved_difference(markdown):
    headline = _section(markdown, "### Headline")
    assert _row(headline, "dae")[1].startswith("**")  # lowest mean MSE
    assert _row(headline, "vae")[1].endswith("†")  # not resolved from dae over 3 seeds
    assert "†" not in _row(headline, "ae")[1] and "**" not in _row(headline, "ae")[1]
    note = next(line for line in headline.splitlines() if line.startswith("- † MSE"))
    assert "best **dae**; variant − dae; interval over training seeds and test images" in note
    assert re.search(r"vae \+0\.000\d+ \(95% CI −0\.\d+ to 0\.\d+\)", note), note
    assert "robust_masking_mse_corrupted" not in headline  # headers come from the glossary
    assert "masking MSE corrupted (per pixel) ↓" in headline


def test_density_is_bold_nearest_one_and_copy_rate_never(markdown):
    gmm = _section(markdown, "#### `gmm`", "\n#### ")
    header = next(line for line in gmm.splitlines() if line.startswith("| variant |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    density, copy = columns.index("Density → 1"), columns.index("Copy rate")
    assert _row(gmm, "vae")[density] == "**1.02 ± 0.01**"
    assert "**" not in _row(gmm, "dae")[density]  # the largest density is not the best
    assert not any("**" in _row(gmm, v)[copy] or "†" in _row(gmm, v)[copy] for v in BINARIZE)
    reference = _row(gmm, "*validation split (reference, n=500)*")
    assert reference[copy] == "0.05" and reference[density] == "0.5"


def test_degenerate_rows_are_shown_but_never_bold_and_say_why(markdown):
    """ae has a seed at its epoch cap and the highest coverage; gvae's samples cover 30% of the
    classes: both are shown, neither is bold or †, and the table says why."""
    gmm = _section(markdown, "#### `gmm`", "\n#### ")
    header = next(line for line in gmm.splitlines() if line.startswith("| variant |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    coverage = columns.index("Coverage ↑")
    for variant in ("ae", "gvae"):
        assert not any("**" in cell or "†" in cell for cell in _row(gmm, variant)[1:])
    assert _row(gmm, "vae")[coverage].startswith("**")  # the best of the rankable rows
    note = next(line for line in gmm.splitlines() if "Not ranked" in line)
    assert "ae (1 of 3 seeds stopped at the epoch cap)" in note
    assert "gvae (its `gmm` samples cover 30% of the classes (under half))" in note
    headline = _section(markdown, "### Headline")
    assert "Not ranked (shown, never bold): ae (1 of 3 seeds stopped at the epoch cap" in headline


def test_findings_never_name_a_degenerate_row_best(markdown):
    findings = _section(markdown, "### Findings")
    assert "**ae**" not in findings and "**gvae** with the `gmm`" not in findings


def test_robustness_ranks_corrupted_and_never_degradation(markdown):
    masking = _section(markdown, "#### *masking*", "\n#### ")
    header = next(line for line in masking.splitlines() if line.startswith("| variant |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    corrupted = columns.index("MSE corrupted (per pixel) ↓")
    degradation = columns.index("MSE degradation (relative)")
    assert degradation == corrupted + 1
    assert _row(masking, "dae")[corrupted].startswith("**")
    assert not any("**" in _row(masking, v)[degradation] for v in BINARIZE)
    assert not any("†" in _row(masking, v)[degradation] for v in BINARIZE)


def test_likelihood_tables_keep_bernoulli_and_gaussian_apart(markdown):
    likelihood = _section(markdown, "### Likelihood (the families with a posterior")
    assert "K = 1,000 importance samples per image" in likelihood
    bernoulli = _section(likelihood, "#### Bernoulli decoders", "\n#### ")
    gaussian = _section(likelihood, "#### Gaussian decoders", "\n#### ")
    assert "| variant | trained on | NLL (nats/image) ↓ | −ELBO (nats/image) ↓ |" in bernoulli
    assert "Gaussian" not in bernoulli.split("| variant |")[1]
    assert "| variant | trained on | Gaussian NLL (nats/image) ↓ |" in gaussian
    assert _row(bernoulli, "vae")[1].startswith("binarised (dynamic, Burda et al. 2015 protocol")
    assert _row(gaussian, "gvae")[1].startswith("grey levels (valid bound, not comparable")
    assert "| dae |" not in likelihood


def test_convergence_table_and_cap_warning(markdown):
    convergence = _section(markdown, "### What early stopping did")
    header = (
        "| variant | Best epoch | Epochs trained | stop reason | Val. gain, 10 epochs to the best"
    )
    assert header in convergence
    assert _row(convergence, "dae")[3] == "patience"
    assert _row(convergence, "ae")[3] == "cap in 1 of 3 seeds, else patience"
    assert "Converged" in convergence and "LR halvings" in convergence
    assert "Val. − train gap" in convergence
    assert "> **Warning:** 1 run(s) stopped at their epoch cap" in convergence
    assert convergence.rstrip().endswith(": ae seed 1.")


def test_cost_has_no_wall_clock(markdown):
    cost = _section(markdown, "### Cost", "\n## ")
    assert "| variant | Parameters | Epochs trained | device |" in cost
    assert "seconds" not in markdown.lower() and "time" not in cost.lower()


def test_wording_and_reference(markdown):
    lowered = markdown.lower()
    assert "seed spread" not in lowered
    assert not re.search(r"\btie[sd]?\b", lowered)
    assert "floor" not in lowered
    assert "*validation split (reference, n=500)* row scores real images that no model" in markdown
    assert "below the 97% target" not in markdown


def test_low_evaluator_accuracy_is_flagged(evidence):
    evaluators = {"digits": {"test_accuracy": 0.9, "reference": REFERENCE}}
    text = render_markdown(build_report(_inputs(evidence, evaluators)))
    assert "> **Warning:** the evaluator's test accuracy 90.00% is below the 97% target" in text


def test_rendering_twice_gives_the_same_text(evidence):
    first = render_markdown(build_report(_inputs(evidence)))
    assert render_markdown(build_report(_inputs(evidence))) == first


# --- glossary ----------------------------------------------------------------------------------

# Every ranked key of the contract and its direction; None: not ranked; a float: a target.
DIRECTIONS = {
    "recon_mse": False,
    "recon_bce": False,
    "recon_psnr": True,
    "recon_ssim": True,
    "probe_accuracy": True,
    "nll_iw": False,
    "neg_elbo": False,
    "gaussian_nll_iw": False,
    "gaussian_neg_elbo": False,
    "nll_importance_samples": None,
    "parameters": None,
    "best_epoch": None,
    "stop_epoch": None,
    "stopped_at_cap": None,
    "val_gain_10": None,
    "val_gain_10_rel": None,
    "sample_chain_fd": False,
    "sample_chain_precision": True,
    "sample_chain_recall": True,
    "sample_chain_density": 1.0,
    "sample_chain_coverage": True,
    "sample_chain_class_coverage": True,
    "sample_chain_class_kl": False,
    "sample_chain_copy_rate": None,
    "robust_gaussian_mse_corrupted": False,
    "robust_gaussian_ssim_corrupted": True,
    "robust_gaussian_probe_corrupted": True,
    "robust_gaussian_mse_degradation": None,
    "robust_gaussian_ssim_degradation": None,
    "robust_gaussian_probe_degradation": None,
    "reference_fd": False,
    "reference_density": 1.0,
}


@pytest.mark.parametrize(("key", "expected"), DIRECTIONS.items())
def test_glossary_direction_of_every_contract_key(key, expected):
    metric = describe(key)
    assert metric.label != key, f"{key} is not in the glossary"
    if isinstance(expected, float):
        assert metric.target == expected and metric.higher_is_better is None
    else:
        assert metric.higher_is_better is expected and metric.target is None


def test_glossary_text_states_directions_density_and_the_chain(markdown):
    glossary = markdown.split("## Glossary", 1)[1]
    assert "**Density** (target 1: ranked by |density − 1|, the nearest is best" in glossary
    assert "**Copy rate** (not ranked)" in glossary
    assert "**MSE degradation** (not ranked" in glossary
    assert "**FD** (lower is better" in glossary
    assert len(glossary_entries()) + len(SAMPLER_MEANING) == glossary.count("\n- **")
    assert (
        "- **`chain` samples**: the DAE Markov chain of Bengio et al. 2013: corrupt the state, "
        "then draw the next state from P(X|X̃) (the DVAE first draws its code z ~ q(z|X̃)); what "
        "is scored and shown is the mean of P(X|X̃), drawn from each chain at evenly spaced "
        "steps (a multiple of `evaluate.chain.thin`) over the trace after the burn-in its "
        "stationarity rule chose (the chain stage)." in glossary
    )
    chain = _section(markdown, "#### `chain`", "\n#### ")
    assert chain.startswith(": the DAE Markov chain of Bengio et al. 2013")
    assert "after the burn-in its stationarity rule chose" in chain


def test_format_value():
    assert format_value(1234567.0) == "1,234,567"
    assert format_value(0.012345, 0.0011, 3) == "0.01235 ± 0.0011"
    assert format_value(math.nan) == "–"
    assert format_value(0.1, 1.7e-17, 3) == "0.1 ± 0"
    assert describe("sample_chain_recall").header == "Recall ↑"
    assert describe("robust_masking_mse_corrupted").header == "masking MSE corrupted (per pixel) ↓"


def test_likelihood_findings_stay_within_one_training_protocol():
    """A model trained on binarised data against one trained on grey levels would measure the
    protocol as much as the model: each NLL finding compares within one protocol."""
    from aebench.report.findings import likelihood_findings
    from aebench.report.intervals import Sample

    class _Fake:
        runs = pd.DataFrame({"dataset": [], "variant": []})  # no run at its cap

        def samples(self, dataset, key):
            seeds = {"binarised": 100.0, "grey_a": 105.0, "grey_b": 107.0}
            return {v: Sample(np.array([m, m + 0.5, m - 0.5])) for v, m in seeds.items()}

    binarize = {"binarised": "dynamic", "grey_a": "none", "grey_b": "none"}
    found = [f for f in likelihood_findings(_Fake(), "d", binarize) if f is not None]
    assert [(f.best, f.runner_up) for f in found] == [("grey_a", "grey_b")]
    assert "among the models trained on grey levels" in found[0].claim
    pooled = likelihood_findings(_Fake(), "d", None)[0]
    assert (pooled.best, pooled.runner_up) == ("binarised", "grey_a")


def test_best_must_beat_every_variant_not_only_the_runner_up():
    """A third variant with a worse mean but a wide spread can leave "best" unresolved even when
    the runner-up is clearly beaten (intersection-union: the largest p decides)."""
    from aebench.report.findings import compare_best
    from aebench.report.intervals import Sample

    class _Fake:
        runs = pd.DataFrame({"dataset": [], "variant": []})  # no run at its cap

        def samples(self, dataset, key):
            return {
                "best": Sample(np.array([1.00, 1.01, 0.99])),
                "close": Sample(np.array([1.20, 1.21, 1.19])),  # clearly worse
                "wild": Sample(np.array([0.5, 3.0, 1.9])),  # worse on average, very noisy
            }

    finding = compare_best(_Fake(), "d", "recon_mse", "has the lowest MSE")
    assert (finding.best, finding.runner_up, finding.weakest) == ("best", "close", "wild")
    assert finding.gain.excludes_zero and finding.gain.p < 0.01
    assert finding.p > 0.05  # decided by the comparison with "wild"


def test_variants_section_says_what_each_row_is(raw_params):
    raw_params["variants"]["article_dae"] = {
        "family": "dae",
        "latent_dim": 16,
        "hidden": [],
        "decoder_hidden": [],
        "code_activation": "relu",
        "likelihood": "gaussian",
        "noise": {"kind": "gaussian", "level": 0.3},
        "train": {"batch_size": 256, "max_epochs": 100},
    }
    params = parse_params(raw_params)
    names = ("ae", "vae", "iwae", "cae", "article_dae")
    text = render_markdown(Document().add(*variant_blocks([params.variant(n) for n in names])))
    assert "| variant | family | architecture | code | settings |" in text
    assert "| ae | ae | mlp [512, 256] | 4 linear | bernoulli decoder |" in text
    assert "| vae | vae | mlp [512, 256] | 4 Gaussian | β 1, bernoulli decoder |" in text
    assert "| iwae | iwae | mlp [512, 256] | 4 Gaussian | iw_samples 3, bernoulli decoder |" in text
    assert "| cae | cae | mlp [512, 256] | 4 sigmoid | contraction_weight 0.1," in text
    assert (
        "| article_dae | dae | mlp [] | 16 relu | noise gaussian 0.3, gaussian (σ 0.1) "
        "decoder, batch 256, ≤ 100 epochs |"
    ) in text
    assert "**iwae**: importance-weighted AE (Burda et al. 2015)" in text
    assert "**dvae**" not in text  # only the families compared


def test_the_report_points_to_the_studies_only_when_some_are_run(evidence):
    from dataclasses import replace

    plain = render_markdown(build_report(_inputs(evidence)))
    assert "reports/studies/" not in plain
    inputs = replace(_inputs(evidence), studies=("dae_noise", "vae_beta"))
    text = render_markdown(build_report(inputs))
    assert "Studies (`dae_noise`, `vae_beta`)" in text and "`reports/studies/`" in text


def test_precision_and_density_are_bold_only_with_their_partner():
    """Precision's best is bold only where that row is also best or tied on recall; a table
    without the partner column bolds neither."""
    from aebench.report.stats import Evidence
    from aebench.report.tables import metric_table

    rows = []
    for variant, precision, recall in (("sharp", 0.95, 0.10), ("broad", 0.70, 0.80)):
        for seed, shift in enumerate(SHIFT):
            rows.append(
                {
                    "dataset": "d",
                    "variant": variant,
                    "seed": seed,
                    "sample_gmm_precision": precision + 0.001 * shift,
                    "sample_gmm_recall": recall + 0.001 * shift,
                    "sample_gmm_density": 1.0 + (variant == "broad") + 0.001 * shift,
                }
            )
    evidence = Evidence(pd.DataFrame(rows))
    stats = ["precision", "recall", "density"]
    key_for = {s: f"sample_gmm_{s}" for s in stats}
    table = metric_table(evidence, "d", stats, key_for)
    cells = {row[0].text: row[1:] for row in table.rows}
    assert not cells["sharp"][0].best  # the highest precision, but the lowest recall
    assert cells["broad"][1].best and not cells["broad"][0].best
    assert not any(row[3].best for row in table.rows)  # density: no coverage column here


def test_only_the_chain_stage_scores_the_chain(tmp_path):
    """An evaluation from before the chain stage scored the chain at a fixed step: its values
    never stand in for the chain stage's, present or missing."""
    write_runs(tmp_path)
    path = run_path(tmp_path, "digits", "dae", 0)
    payload = json.loads(path.read_text())
    payload["metrics"]["sample_chain_fd"] = 999.0  # the old in-evaluate chain
    path.write_text(json.dumps(payload))
    runs = load_runs(tmp_path, RUN, [tmp_path / "chain"]).set_index(["variant", "seed"])
    assert runs.loc[("dae", 0), "sample_chain_fd"] != 999.0
    run_path(tmp_path / "chain", "digits", "dae", 0).unlink()
    runs = load_runs(tmp_path, RUN, [tmp_path / "chain"]).set_index(["variant", "seed"])
    assert math.isnan(runs.loc[("dae", 0), "sample_chain_fd"])
