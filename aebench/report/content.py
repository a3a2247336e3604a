"""What the report says: builds the :class:`Document` both renderers turn into pages.

Everything here is derived from the evaluation outputs (per-seed metrics, per-image values,
evaluator summaries, figures already drawn) — no training, no model code. Findings live in
:mod:`aebench.report.findings`, tables in :mod:`aebench.report.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aebench.models.registry import BY_NAME, family_class
from aebench.report.document import (
    BulletList,
    Cell,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
)
from aebench.report.findings import findings_text, reference_label
from aebench.report.glossary import (
    CONVERGENCE,
    COST,
    LIKELIHOOD_BERNOULLI,
    LIKELIHOOD_GAUSSIAN,
    ROBUST_STATS,
    SAMPLE_STATS,
    SAMPLER_MEANING,
    glossary_entries,
)
from aebench.report.headline import HEADLINE
from aebench.report.results import PerImage
from aebench.report.stats import Evidence
from aebench.report.tables import format_value, metric_table
from aebench.report.variants import variant_blocks
from aebench.spec import NOISE_KINDS, SAMPLERS, VariantSpec

EVALUATOR_ACCURACY_TARGET = 0.97
RECONSTRUCTION = ("recon_mse", "recon_bce", "recon_psnr", "recon_ssim", "probe_accuracy")
ROBUST_PAIRS = (("mse", "MSE"), ("ssim", "SSIM"), ("probe", "probe accuracy"))
TRAINED_ON = {
    "dynamic": "binarised (dynamic, Burda et al. 2015 protocol; comparable with published numbers)",
    "none": "grey levels (valid bound, not comparable with published binarised-MNIST numbers)",
}


@dataclass
class ReportInputs:
    """Everything the report is made of."""

    runs: pd.DataFrame  # one row per (dataset, variant, seed), one column per metric
    evaluators: dict[str, dict]  # dataset -> evaluator.json
    seeds: tuple[int, ...]
    environment: list[str]  # header lines
    per_image: PerImage = field(default_factory=dict)  # (dataset, variant, seed) -> arrays
    binarize: dict[str, str] = field(default_factory=dict)  # variant -> params binarize
    figures: dict[str, list[tuple[str, Figure]]] = field(
        default_factory=dict
    )  # dataset -> (section, fig)
    devices: dict[tuple[str, str], str] = field(
        default_factory=dict
    )  # (dataset, variant) -> device
    variants: tuple[VariantSpec, ...] = ()  # the compared variants, in run order
    studies: tuple[str, ...] = ()  # run.studies: drawn in studies/ by their own pipeline
    full_mnist: bool = False  # params.yaml declares the full-MNIST section (its own report)
    tuned: tuple[str, ...] = ()  # the variants params.yaml's tuning grids tune (their own report)
    # dataset -> memorisation/<dataset>/reference.json (the copying sampler's rate), where run
    memorisation: dict[str, dict] = field(default_factory=dict)

    @property
    def evidence(self) -> Evidence:
        return Evidence(self.runs, self.per_image)


def _section(title: str, table: Table | None, intro: str = "") -> list:
    if table is None:
        return []
    return [Heading(3, title), *([Paragraph(intro)] if intro else []), table]


def insert_column(table: Table, index: int, header: str, texts: dict[str, str]) -> Table:
    """``table`` with a text column at ``index``, filled per row by its first cell's text."""
    rows = tuple(
        (*row[:index], Cell(texts.get(row[0].text, "–")), *row[index:]) for row in table.rows
    )
    return Table(
        (*table.header[:index], header, *table.header[index:]), rows, table.caption, table.notes
    )


# --- sections ----------------------------------------------------------------------------------


def _evaluator_blocks(dataset: str, evaluator: dict) -> list:
    accuracy = evaluator["test_accuracy"]
    label = reference_label(evaluator["reference"])
    blocks: list = [
        Paragraph(
            f"Sample metrics are computed in the feature space of a small CNN classifier trained "
            f"on `{dataset}` (test accuracy {accuracy:.2%}); they are **not** Inception-FID "
            "numbers and are comparable only within this dataset. Every set is scored against "
            f"the test split. The *{label}* row scores real images that no model trained on "
            "(the validation split selects checkpoints and drives the learning-rate schedule, "
            "also the evaluator's checkpoint, which makes this row slightly optimistic), "
            f"{int(evaluator['reference']['count'])} of them: the same count as each sampler "
            "draws, so it shows what real held-out data achieves on every column. "
            "Density is ranked by |density − 1| (bold: nearest 1); copy rate has no better "
            "direction and is read against the reference row (about 0.05 by construction). The "
            "intervals of these columns cover training seeds only: a set statistic has no "
            "per-image values."
        )
    ]
    if accuracy < EVALUATOR_ACCURACY_TARGET:
        blocks.append(
            Paragraph(
                f"the evaluator's test accuracy {accuracy:.2%} is below the "
                f"{EVALUATOR_ACCURACY_TARGET:.0%} target: class coverage and class KL are "
                "unreliable, and feature-space metrics less trustworthy.",
                warning=True,
            )
        )
    return blocks


def _reference_row(evaluator: dict) -> tuple[Cell, ...]:
    reference = evaluator["reference"]
    return (
        Cell(f"*{reference_label(reference)}*"),
        *(Cell(format_value(float(reference.get(s, np.nan)))) for s in SAMPLE_STATS),
    )


MEMORISATION_COLUMNS = {
    "recon_train_copy_rate": "Copy rate: training recon.",
    "sample_recon_copy_rate": "Copy rate: test recon.",
    **{f"sample_{s}_copy_rate": f"Copy rate: `{s}`" for s in SAMPLERS},
    "recon_train_mse": "MSE: training recon.",
    "recon_mse": "MSE: test recon.",
}


def memorisation_blocks(inputs: ReportInputs, dataset: str) -> list:
    """The copy rate beside its controls (aebench/memorisation.py): reconstructions of training
    images (what memorising looks like for this model) and of test images, every sampler's
    rate, and the rates of held-out and of training images themselves."""
    reference = inputs.memorisation.get(dataset)
    if reference is None:
        return []
    evaluator = inputs.evaluators[dataset]["reference"]
    columns = list(MEMORISATION_COLUMNS)

    def row(label: str, column: str, rate: float) -> tuple[Cell, ...]:
        """A row of real images: its rate in the column of the reconstructions it stands for."""
        cells = [Cell(format_value(rate)) if c == column else Cell("") for c in columns]
        return (Cell(f"*{label}*"), *cells)

    rows = [
        row(
            f"{reference_label(evaluator)}: held-out images",
            "sample_recon_copy_rate",
            float(evaluator["copy_rate"]),
        ),
        row(
            f"training images, n={reference['images']} (a sampler that copies)",
            "recon_train_copy_rate",
            float(reference["training_images_copy_rate"]),
        ),
    ]
    table = metric_table(
        inputs.evidence,
        dataset,
        columns,
        extra_rows=rows,
        header_for=MEMORISATION_COLUMNS,
        unranked=columns,
    )
    intro = (
        "The copy rate counts images nearer to a training image than 95% of held-out images "
        "are, so held-out images score about 0.05 and training images themselves 1. Each "
        "model's reconstructions of "
        f"{reference['images']} training images (the same for every model) show what "
        "memorising would score for it; beside its reconstructions of the test images, the gap "
        "between the two shows how much closer it comes to images it was trained on than to new "
        "ones, in copy rate and in MSE (seed spread only: no interval). No column is ranked."
    )
    return _section("Memorisation", table, intro)


CHAIN_COLUMNS = (
    "chain_mixed",
    "chain_burn_in",
    "chain_sampling_thin",
    "chain_denoise_mse_grey",
    "chain_denoise_mse_state",
)


def chain_blocks(evidence: Evidence, dataset: str) -> list:
    """How each denoising variant's chain was sampled: whether it mixed, its burn-in, the
    spacing of its draws, and what its states cost the model (grey against chain-like input)."""
    table = metric_table(evidence, dataset, list(CHAIN_COLUMNS), unranked=CHAIN_COLUMNS)
    intro = (
        'How the `chain` samples were drawn (the chain stage; docs/pipeline.md, "The DAE '
        'Markov chain"): one verdict and one burn-in per variant, so mixed is 1 when the '
        "stationarity rule held on every seed, else 0; a chain that did not mix is sampled "
        "after its whole trace and never ranked. The two MSEs denoise the same corrupted test "
        "images from grey input, as in training, and from chain-like input (binary for a "
        "Bernoulli decoder)."
    )
    return _section("The DAE chain", table, intro) if table else []


def robustness_blocks(evidence: Evidence, dataset: str) -> list:
    """Per corruption kind: each quality under corruption (ranked) beside its degradation."""
    blocks: list = []
    for kind in NOISE_KINDS:
        columns, unranked = [], []
        for stat, _ in ROBUST_PAIRS:
            columns += [f"{stat}_corrupted", f"{stat}_degradation"]
            unranked.append(f"{stat}_degradation")
        key_for = {c: f"robust_{kind}_{c}" for c in columns}
        header_for = {c: ROBUST_STATS[c].header for c in columns}
        table = metric_table(
            evidence, dataset, columns, key_for, header_for=header_for, unranked=unranked
        )
        if table is not None:
            blocks += [Heading(4, f"*{kind}*"), table]
    if not blocks:
        return []
    intro = (
        "Each model reconstructs the clean test image from a corrupted one at every level of a "
        "grid per corruption kind, with identical corruption draws for every model. *Corrupted* "
        "columns are the quality under corruption, the mean over the levels above 0 (the clean "
        "level excluded): they are ranked, and the most robust model is the best of them. "
        "*Degradation* columns (corrupted / the model's own clean value − 1) are shown beside "
        "them and never ranked: a model that is poor on clean images can degrade little."
    )
    return [Heading(3, "Noise robustness"), Paragraph(intro), *blocks]


def _importance_samples(runs: pd.DataFrame, dataset: str) -> str:
    frame = runs[runs.dataset == dataset]
    if "nll_importance_samples" not in frame:
        return ""
    values = sorted({int(k) for k in frame.nll_importance_samples.dropna()})
    if not values:
        return ""
    return "K = " + " / ".join(f"{k:,}" for k in values)


def likelihood_blocks(inputs: ReportInputs, dataset: str) -> list:
    """Bernoulli and Gaussian likelihoods in separate tables: nats of a probability mass on
    binarised pixels and nats of a density on grey levels are different quantities."""
    evidence = inputs.evidence
    trained_on = {v: TRAINED_ON.get(b, b) for v, b in inputs.binarize.items()}
    blocks: list = []
    for title, columns in (
        ("Bernoulli decoders: NLL of the binarised test split", LIKELIHOOD_BERNOULLI),
        ("Gaussian decoders: density of the grey-level test images", LIKELIHOOD_GAUSSIAN),
    ):
        table = metric_table(evidence, dataset, columns)
        if table is not None:
            blocks += [Heading(4, title), insert_column(table, 1, "trained on", trained_on)]
    if not blocks:
        return []
    k = _importance_samples(inputs.runs, dataset)
    intro = (
        "Importance-sampled negative log-likelihood (Burda et al. 2015) with "
        f"{k or 'K (not recorded)'} importance samples per image, and the negative ELBO, in "
        "nats per image. Bernoulli decoders are scored on the test split binarised once with a "
        "fixed seed; Gaussian decoders as a density on grey levels, which is never comparable "
        "with a Bernoulli NLL. *Trained on* says whether a model followed the binarised-MNIST "
        "protocol its published numbers use."
    )
    # the built-in families with a posterior, and any family of the user's with one
    families = ", ".join(
        dict.fromkeys(
            [name for name, cls in BY_NAME.items() if cls.has_posterior]
            + [s.family for s in inputs.variants if family_class(s.family).has_posterior]
        )
    )
    return [
        Heading(3, f"Likelihood (the families with a posterior: {families})"),
        Paragraph(intro),
        *blocks,
    ]


def _stop_reasons(frame: pd.DataFrame) -> dict[str, str]:
    reasons = {}
    for variant, group in frame.groupby("variant", sort=False):
        at_cap = group.stopped_at_cap.dropna()
        if at_cap.empty:
            continue
        capped, n = int((at_cap == 1).sum()), len(at_cap)
        if capped == 0:
            reasons[variant] = "patience"
        elif capped == n:
            reasons[variant] = "cap"
        else:
            reasons[variant] = f"cap in {capped} of {n} seeds, else patience"
    return reasons


def convergence_blocks(evidence: Evidence, dataset: str) -> list:
    """When each run stopped and why, and a warning naming every run that hit the epoch cap."""
    table = metric_table(evidence, dataset, CONVERGENCE)
    frame = evidence.runs[evidence.runs.dataset == dataset]
    if table is None or "stopped_at_cap" not in frame:
        return []
    index = 1 + CONVERGENCE.index("stop_epoch") + 1
    table = insert_column(table, index, "stop reason", _stop_reasons(frame))
    blocks: list = [
        Heading(3, "What early stopping did"),
        Paragraph(
            "Every model is early-stopped on validation. Training stops when the validation "
            "objective has not fallen more than "
            "`train.min_delta` below its value at the last such improvement for `train.patience` "
            "epochs in a row (*patience*), or at the epoch cap (*cap*: `train.max_epochs`, or the "
            "variant's own `train.max_epochs`); the best "
            "epoch's checkpoint is evaluated. The validation gain is the improvement in nats per "
            "image over the 10 epochs before the best epoch (relative: over |best validation "
            "objective|; fewer epochs when the best came earlier). It is measured from the "
            "minimum of a noisy curve, so it is biased upward: read it as an upper bound on how "
            "much the curve was still falling. *Converged* (1) is a stated rule, not the stop: "
            "stopped by patience, and the objective fell by at most `train.min_delta` per epoch "
            "on average over those 10 epochs. The val. − train gap is the best validation "
            "objective minus the same model's objective on a fixed training subset scored the "
            "same way (eval mode, the same draws), for every family alike: a large gap means "
            "the model was stopped while it fitted its training images better than unseen ones "
            "(over-fitting), not at convergence. LR halvings: the plateau schedule's cuts."
        ),
        table,
    ]
    capped = frame[frame.stopped_at_cap == 1]
    if not capped.empty:
        runs = ", ".join(f"{r.variant} seed {int(r.seed)}" for r in capped.itertuples())
        blocks.append(
            Paragraph(
                f"{len(capped)} run(s) stopped at their epoch cap rather than by the "
                f"patience rule, so they may not have converged and their numbers may "
                f"understate the model: {runs}.",
                warning=True,
            )
        )
    return blocks


def cost_blocks(inputs: ReportInputs, dataset: str) -> list:
    cost = metric_table(inputs.evidence, dataset, COST)
    if cost is None:
        return []
    device = {v: d for (ds, v), d in inputs.devices.items() if ds == dataset}
    cost = insert_column(cost, len(cost.header), "device", device)
    return [Heading(3, "Cost"), cost]


RECON_CAVEAT = (
    "Each test image's own reconstruction, scored against the same test images: every sample "
    "has its source in the set it is compared with, so precision, coverage and copy rate are "
    "inflated and not comparable with the samplers' tables or with the reference row (left out "
    "here). Read this table across variants only."
)


def dataset_blocks(inputs: ReportInputs, dataset: str) -> list:
    evidence, evaluator = inputs.evidence, inputs.evaluators[dataset]
    figures = inputs.figures.get(dataset, [])

    def figures_for(section: str) -> list:
        return [figure for name, figure in figures if name == section]

    blocks: list = [Heading(2, dataset)]
    items, rule = findings_text(evidence, dataset, evaluator, inputs.binarize)
    if items:
        blocks += [Heading(3, "Findings"), BulletList(tuple(items)), Paragraph(rule)]
    blocks += _section(
        "Headline",
        metric_table(evidence, dataset, HEADLINE),
        "Key metrics, mean ± std over seeds. Robustness columns are the reconstruction MSE from "
        "corrupted inputs (mean over the levels above 0); sample columns use the `gmm` "
        "sampler, which every family has; NLL is for Bernoulli decoders only.",
    )
    blocks += figures_for("headline")
    blocks += _section(
        "Reconstruction and representation", metric_table(evidence, dataset, RECONSTRUCTION)
    )
    blocks += robustness_blocks(evidence, dataset)
    blocks += figures_for("robustness")
    blocks += [Heading(3, "Sample quality"), *_evaluator_blocks(dataset, evaluator)]
    for sampler in ("recon", *SAMPLERS):
        key_for = {stat: f"sample_{sampler}_{stat}" for stat in SAMPLE_STATS}
        # Reconstructions are the test images' own (paired with the set they are scored
        # against, and twice the reference's count): the reference row would mislead there.
        reference = [] if sampler == "recon" else [_reference_row(evaluator)]
        table = metric_table(evidence, dataset, list(SAMPLE_STATS), key_for, reference)
        if table:
            blocks += [Heading(4, f"`{sampler}`: {SAMPLER_MEANING[sampler]}")]
            if sampler == "recon":
                blocks.append(Paragraph(RECON_CAVEAT))
            blocks.append(table)
    blocks += figures_for("samples")
    blocks += chain_blocks(evidence, dataset)
    blocks += memorisation_blocks(inputs, dataset)
    blocks += likelihood_blocks(inputs, dataset)
    blocks += convergence_blocks(evidence, dataset)
    training = figures_for("training")
    if training:
        blocks += [Heading(3, "Training"), *training]
    latent = figures_for("latent")
    if latent:
        blocks += [Heading(3, "Latent space"), *latent]
    blocks += cost_blocks(inputs, dataset)
    return blocks


def glossary_blocks() -> list:
    items = []
    for metric in glossary_entries():
        reference = f" *{metric.reference}*." if metric.reference else ""
        unit = f"; unit: {metric.unit}" if metric.unit else ""
        items.append(f"**{metric.label}** ({metric.direction}{unit}): {metric.meaning}{reference}")
    samplers = [f"**`{name}` samples**: {meaning}." for name, meaning in SAMPLER_MEANING.items()]
    return [Heading(2, "Glossary"), BulletList(tuple(items)), BulletList(tuple(samplers))]


def intro_paragraph(seeds: Sequence[int]) -> Paragraph:
    return Paragraph(
        f"Mean ± standard deviation over {len(seeds)} seed(s) "
        f"({', '.join(map(str, seeds))}); ↑ higher is better, ↓ lower is better, → 1: nearest "
        "1 is best. **Bold** marks the best of a column and † a variant whose difference from the "
        "best is not resolved: its 95% confidence interval spans 0. The interval covers training "
        "noise (Welch over each variant's seeds) plus, for metrics with per-image values, the "
        "finite test set (the per-image differences, paired because every model sees the same "
        "test images and corruption draws), with Welch–Satterthwaite degrees of freedom; with "
        "one seed on a side there is no interval. Each table lists its † differences underneath."
    )


def studies_paragraph(studies: Sequence[str]) -> Paragraph:
    """Where the studies' curves are: their own pipeline renders them, so this report never
    waits for (or depends on) them."""
    names = ", ".join(f"`{name}`" for name in studies)
    return Paragraph(
        f"Studies ({names}): each sweeps one setting of some of these variants; their curves and "
        "findings are in `reports/studies/` (README.md, index.html), rendered by "
        "`aebench study` (not part of this report's `dvc repro`)."
    )


def full_mnist_paragraph() -> Paragraph:
    """Where the full-MNIST section is: its own pipeline renders it (hours of compute)."""
    return Paragraph(
        "These results are on the dataset(s) above; the full MNIST (60,000 training images, "
        "the literature's split, Burda et al.'s VAE and IWAE beside their published NLL) is in "
        "`reports/full_mnist/` (README.md, index.html), rendered by `aebench full-mnist` (not "
        "part of this report's `dvc repro`)."
    )


def tuning_paragraph(variants: tuple[str, ...]) -> Paragraph:
    """Where the tuned settings are: the rows above run at their declared settings."""
    names = ", ".join(f"`{v}`" for v in variants)
    return Paragraph(
        f"The rows below run at their declared settings. {names} "
        f"{'is' if len(variants) == 1 else 'are'} also tuned: a grid per "
        "variant selected on the validation split per task, retrained with these seeds and set "
        "beside these rows in `reports/tuning/` (README.md, index.html), rendered by "
        "`aebench tune` (not part of this report's `dvc repro`)."
    )


def build_report(inputs: ReportInputs) -> Document:
    doc = Document().add(
        Heading(1, "aebench: VAE vs DAE benchmark"),
        BulletList(tuple(inputs.environment)),
        intro_paragraph(inputs.seeds),
    )
    if inputs.studies:
        doc.add(studies_paragraph(inputs.studies))
    if inputs.full_mnist:
        doc.add(full_mnist_paragraph())
    if inputs.tuned:
        doc.add(tuning_paragraph(inputs.tuned))
    if inputs.variants:
        doc.add(*variant_blocks(inputs.variants))
    for dataset in dict.fromkeys(inputs.runs.dataset):
        doc.add(*dataset_blocks(inputs, dataset))
    doc.add(*glossary_blocks())
    return doc
