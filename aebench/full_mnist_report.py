"""The full-MNIST section's report: the literature table first, then the same tables the default
report has (headline, robustness, samples, likelihood, what early stopping did) for the section's
runs, and the comparisons where mnist5k and the full MNIST disagree.

Every comparison is a difference with its 95% interval: the IWAE − VAE difference over seeds
(Welch) and over the test images (paired), as the default report's; the cross-dataset list over
seeds only, alike on both datasets. A literature row's published value has no interval, so its
gap is stated with ours only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np
import pandas as pd

from aebench.config import FullMnistConfig, Params, RunConfig
from aebench.report.content import ReportInputs, dataset_blocks, glossary_blocks
from aebench.report.document import BulletList, Cell, Document, Heading, Paragraph, Table
from aebench.report.eligibility import PARTNERS, unrankable
from aebench.report.glossary import describe
from aebench.report.headline import HEADLINE
from aebench.report.intervals import (
    Difference,
    Sample,
    difference,
    mean_interval,
    signed_text,
)
from aebench.report.stats import Evidence, rank
from aebench.spec import TrainConfig


def protocol_differences(train: TrainConfig) -> tuple[str, ...]:
    """How this benchmark's protocol (``train``: a literature row's resolved training settings)
    differs from Burda et al.'s (2015, section 5), in the words the literature table prints."""
    halving = (
        f"multiplied by {train.lr_plateau_factor:g} once more than "
        f"{train.lr_plateau_patience} epochs in a row bring no improvement"
        if train.lr_plateau_factor is not None
        else "fixed"
    )
    return (
        "Passes: theirs 3,280 passes over the data (3^i for i = 0 … 7); ours early-stopped on a "
        "validation "
        f"split ({train.patience} epochs without a {train.min_delta:g}-nat improvement), at most "
        f"{train.max_epochs} passes.",
        "Learning-rate schedule: theirs 0.001 · 10^(−i/7) for 3^i passes, i = 0 … 7; ours Adam "
        f"at {train.lr:g}, {halving}.",
        f"Batch size: theirs 20; ours {train.batch_size}.",
        "Binarisation: both dynamic (a fresh Bernoulli draw of every training batch); our test "
        "images are binarised once, with `evaluate.seed`.",
        "Split: theirs trains on all 60,000 training images; ours on 50,000, keeping 10,000 "
        "(seeded, stratified) for early stopping. Both test on the official 10,000.",
        "Optimiser: both Adam; theirs with ε = 10⁻⁴, ours with PyTorch's default ε = 10⁻⁸.",
    )


@dataclass(frozen=True)
class LiteratureRow:
    """Our test NLL of a literature variant beside the published value."""

    variant: str
    published: float
    source: str
    ours: Sample
    gain_10: float  # mean over seeds of the validation gain over the 10 epochs before the best
    converged: int  # seeds converged by the stated rule
    capped: int  # seeds stopped at the epoch cap

    @property
    def mean_interval(self) -> tuple[float, float]:
        """95% t-interval of our mean over seeds (nan with one seed)."""
        values = self.ours.seeds
        if len(values) < 2:
            return math.nan, math.nan
        found = mean_interval(self.ours.mean, float(np.std(values, ddof=1)), len(values))
        return found or (math.nan, math.nan)


def section_params(params: Params) -> Params:
    """``params`` with the run matrix replaced by the full-MNIST section's, so the default
    report's gathering and tables read the section's runs."""
    section = _section(params)
    run = RunConfig(datasets=(section.dataset,), variants=section.variants, seeds=section.seeds)
    return replace(params, run=run)


def _section(params: Params) -> FullMnistConfig:
    if params.full_mnist is None:
        raise ValueError("params.yaml has no full_mnist section")
    return params.full_mnist


def literature_rows(params: Params, evidence: Evidence) -> list[LiteratureRow]:
    """Each literature row's test NLL over seeds, with its per-image values where the runs have
    them (so the IWAE − VAE difference is paired over the same test images)."""
    section = _section(params)
    runs = evidence.runs
    nll = evidence.samples(section.dataset, "nll_iw")
    rows = []
    for variant, published in section.literature.items():
        frame = runs[(runs.dataset == section.dataset) & (runs.variant == variant)]
        rows.append(
            LiteratureRow(
                variant=variant,
                published=published.nll,
                source=published.source,
                ours=nll.get(variant, Sample(np.array([], dtype=np.float64))),
                gain_10=float(frame.val_gain_10.mean()),
                converged=int(frame.get("converged", pd.Series(dtype=float)).sum()),
                capped=int(frame.stopped_at_cap.sum()),
            )
        )
    return rows


def _nats(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def literature_blocks(
    rows: list[LiteratureRow], importance_samples: int, train: TrainConfig
) -> list:
    """The table, the protocol differences in words, and the IWAE − VAE comparison."""
    if not rows:
        return []
    header = (
        "variant",
        "ours: test NLL (mean ± sd)",
        "ours: 95% interval of the mean",
        "published",
        "ours − published",
        "val. gain, 10 epochs before the best",
        "converged / capped seeds",
        "source",
    )
    body = []
    for row in rows:
        low, high = row.mean_interval
        sd = float(np.std(row.ours.seeds, ddof=1)) if row.ours.n > 1 else math.nan
        mean = row.ours.mean if row.ours.n else math.nan  # a row whose runs are not there yet
        ours = f"{_nats(mean)} ± {_nats(sd)} ({row.ours.n} seeds)" if row.ours.n else "– (no runs)"
        body.append(
            tuple(
                Cell(text)
                for text in (
                    f"`{row.variant}`",
                    ours,
                    f"[{_nats(low)}, {_nats(high)}]",
                    _nats(row.published),
                    "–" if math.isnan(mean) else f"{mean - row.published:+.2f}",
                    _nats(row.gain_10),
                    f"{row.converged} / {row.capped} of {row.ours.n}",
                    row.source,
                )
            )
        )
    blocks: list = [
        Heading(2, "The literature protocol, side by side"),
        Paragraph(
            f"Test NLL in nats (importance-sampled, K = {importance_samples} as in the paper) of "
            "Burda et al.'s architecture (784-200-200-50, tanh, dynamic binarisation), trained "
            "by this benchmark's protocol. The published values have no interval; ours is over "
            "seeds. A large gain over the 10 epochs before the best epoch means the run was still "
            "improving there."
        ),
        Table(header, tuple(body)),
        Heading(3, "Protocol differences"),
        BulletList(protocol_differences(train)),
    ]
    blocks += _ordering_blocks(rows)
    return blocks


def _ordering_blocks(rows: list[LiteratureRow]) -> list:
    """Whether the IWAE is below the VAE with a resolved difference, as in the paper."""
    if len(rows) < 2:
        return []
    first, second = rows[0], rows[1]
    published = second.published - first.published
    if first.ours.n == 0 or second.ours.n == 0:  # a row whose runs are not there yet
        return [
            Paragraph(
                f"`{second.variant}` − `{first.variant}`: not computed (a row has no runs); "
                f"published {published:+.2f}."
            )
        ]
    diff = difference(second.ours, first.ours)
    if not diff.resolvable:
        verdict = "no interval"
    else:
        verdict = "resolved" if diff.excludes_zero else "not resolved: the interval spans 0"
    if diff.covers_images:  # say what the interval covers: seeds and the paired test images
        verdict = (
            f"interval over training seeds and the {diff.n_images:,} test images, paired; "
            + verdict
        )
    text = (
        f"`{second.variant}` − `{first.variant}`: {signed_text(diff)} nats "
        f"({diff.seeds_text}; {verdict}); published {published:+.2f}."
    )
    return [Paragraph(text)]


# --- conclusions across datasets -------------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    metric: str
    kind: str  # "best" or "sign"
    text: str
    pair: tuple[str, str]  # the two variants compared


def _flipped(
    one: str, other: str, small: dict[str, Sample], full: dict[str, Sample]
) -> tuple[Difference, Difference] | None:
    """``one`` − ``other`` on each dataset, where its sign changes and its interval excludes 0
    on at least one of them; else None."""
    on_small = difference(small[one], small[other])
    on_full = difference(full[one], full[other])
    if np.sign(on_small.estimate) == np.sign(on_full.estimate):
        return None
    return (on_small, on_full) if on_small.excludes_zero or on_full.excludes_zero else None


def cross_dataset(
    small: Evidence, small_name: str, full: Evidence, full_name: str, variants: list[str]
) -> list[Disagreement]:
    """For the variants run on both, per headline metric: a different best, where the two bests'
    difference is resolved on either dataset, and any other pairwise difference whose sign
    changes while it is resolved on either (seeds-only Welch intervals, the same on both sides,
    so the comparison is like with like). A row that may not be called best on a dataset (a
    seed at its epoch cap, a sampler covering under half of the classes: eligibility.py) is
    not ranked there, and density or precision never names a best alone (their partner
    metrics do)."""
    found = []
    for key in HEADLINE:
        metric = describe(key)
        if not metric.ranked:
            continue
        a = _seeds_only(small.samples(small_name, key), variants)
        b = _seeds_only(full.samples(full_name, key), variants)
        shared = [v for v in variants if v in a and v in b]
        if len(shared) < 2:
            continue
        listed = set()
        best_small = _best(a, small, small_name, key, shared)
        best_full = _best(b, full, full_name, key, shared)
        changed = best_small is not None and best_full is not None and best_small != best_full
        if changed and (flip := _flipped(best_full, best_small, a, b)):
            on_small, on_full = flip
            found.append(
                Disagreement(
                    key,
                    "best",
                    f"{metric.label}: best on {small_name} `{best_small}`, on {full_name} "
                    f"`{best_full}` (among the {len(shared)} variants run on both); "
                    f"`{best_full}` − `{best_small}`: {signed_text(on_small)} on {small_name}, "
                    f"{signed_text(on_full)} on {full_name}",
                    (best_full, best_small),
                )
            )
            listed.add(frozenset((best_full, best_small)))
        for one, other in combinations(shared, 2):
            if frozenset((one, other)) in listed or not (flip := _flipped(one, other, a, b)):
                continue
            on_small, on_full = flip
            found.append(
                Disagreement(
                    key,
                    "sign",
                    f"{metric.label}, `{one}` − `{other}`: {signed_text(on_small)} on "
                    f"{small_name}, {signed_text(on_full)} on {full_name}",
                    (one, other),
                )
            )
    return found


def _best(
    samples: dict[str, Sample], evidence: Evidence, dataset: str, key: str, shared: list[str]
) -> str | None:
    """The metric's best variant on ``dataset`` among the shared rows that may be called best
    there (eligibility.py); None where fewer than two may, or for density and precision, which
    never name a best alone."""
    if any(key.endswith(stat) for stat in PARTNERS):
        return None
    barred = unrankable(evidence, dataset, key) if not evidence.runs.empty else {}
    eligible = {v: samples[v] for v in shared if v not in barred}
    return rank(eligible, describe(key)).best if len(eligible) >= 2 else None


def _seeds_only(samples: dict[str, Sample], variants: list[str]) -> dict[str, Sample]:
    return {v: Sample(s.seeds) for v, s in samples.items() if v in variants}


def cross_dataset_blocks(found: list[Disagreement], small_name: str, shared: list[str]) -> list:
    intro = (
        f"For the {len(shared)} variants run on both {small_name} and the full MNIST "
        f"({', '.join(f'`{v}`' for v in shared)}): each headline metric whose best variant "
        "differs, and each difference between two of them whose sign changes, where the "
        "difference's 95% interval (over seeds) excludes 0 on at least one dataset. A row that "
        "may not be called best on a dataset (a seed at its epoch cap; samples covering under "
        "half of the classes) is not ranked there."
    )
    blocks: list = [Heading(2, "Where the two datasets disagree"), Paragraph(intro)]
    if not shared:
        return [blocks[0], Paragraph("No variant is run on both datasets.")]
    if not found:
        return [*blocks, Paragraph("None: every comparison agrees in sign where resolved.")]
    return [*blocks, BulletList(tuple(item.text for item in found))]


def build_document(
    params: Params,
    inputs: ReportInputs,
    small: Evidence | None,
    small_name: str,
    shared: list[str],
) -> Document:
    section = _section(params)
    doc = Document().add(
        Heading(1, "aebench: the full MNIST"),
        BulletList(tuple(inputs.environment)),
        Paragraph(
            f"The official 60,000 training images (50,000 to train, 10,000 drawn for validation, "
            f"seeded and stratified) and the official 10,000 test images, all evaluated; "
            f"{len(section.seeds)} seeds per variant, early-stopped on validation. Mean ± "
            "standard deviation over seeds; differences carry their 95% interval. The quick "
            "report (`reports/README.md`) is on mnist5k: 3,500 training images."
        ),
    )
    rows = literature_rows(params, inputs.evidence)
    train = params.train_for(rows[0].variant) if rows else params.train
    doc.add(*literature_blocks(rows, section.literature_importance_samples, train))
    if small is not None:
        found = cross_dataset(small, small_name, inputs.evidence, section.dataset, shared)
        doc.add(*cross_dataset_blocks(found, small_name, shared))
    doc.add(*dataset_blocks(inputs, section.dataset))
    doc.add(*glossary_blocks())
    return doc
