"""The findings: the answer before the tables, each a difference between two variants.

Every finding names the best variant and the runner-up on one metric and states their difference
in the metric's own unit with its 95% interval (:mod:`aebench.report.intervals`). Several findings
are read together, so "resolved" is decided with Holm's adjustment over the findings listed: a
finding is resolved only when its Holm-adjusted p < 0.05, which keeps the chance of any false
claim among them at most 5%. The intervals themselves are not adjusted.
"""

from __future__ import annotations

from dataclasses import dataclass

from aebench.report.eligibility import unrankable
from aebench.report.glossary import Metric, describe
from aebench.report.intervals import (
    ALPHA,
    Difference,
    Sample,
    decimals_for,
    difference,
    estimate_decimals,
    fixed,
    holm,
    interval_text,
)
from aebench.report.stats import Evidence
from aebench.report.tables import format_value
from aebench.spec import NOISE_KINDS, SAMPLERS

# Units worth writing after a difference ("3.1 nats/image lower"); the rest read as plain numbers.
SPOKEN_UNITS = ("nats/image", "nats", "dB")


@dataclass(frozen=True)
class Finding:
    """``best`` beats ``runner_up`` on ``metric``; ``gain`` is oriented so that > 0 favours the
    best (runner-up − best where lower is better, best − runner-up where higher is)."""

    claim: str  # e.g. "has the lowest reconstruction MSE": said only when resolved
    metric: Metric
    best: str
    runner_up: str
    gain: Difference
    context: str = ""  # a clause after the verdict, e.g. the reference row's value
    # "Best" is a claim against every other variant, not only the runner-up (an
    # intersection-union test): the largest p over those comparisons, and whose it is.
    p_all: float | None = None
    weakest: str = ""
    topic: str = ""  # what is compared, without a superlative (default: the metric's label)

    @property
    def p(self) -> float | None:
        """The p-value that decides the finding: the largest over every comparison."""
        return self.p_all if self.p_all is not None else self.gain.p


def _best_two(samples: dict[str, Sample], higher_is_better: bool) -> tuple[str, str] | None:
    if len(samples) < 2:
        return None
    sign = -1.0 if higher_is_better else 1.0
    ranked = sorted(samples, key=lambda v: sign * samples[v].mean)
    return ranked[0], ranked[1]


def compare_best(
    evidence: Evidence,
    dataset: str,
    key: str,
    claim: str,
    among: set[str] | None = None,
    topic: str = "",
) -> Finding | None:
    """The best and runner-up on ``key`` (among the variants ``among``, default all) and their
    difference; None with fewer than two variants or for a metric without a direction."""
    metric = describe(key)
    if metric.higher_is_better is None:
        return None
    excluded = unrankable(evidence, dataset, key)  # a degenerate row is never named best
    samples = {v: s for v, s in evidence.samples(dataset, key).items() if v not in excluded}
    if among is not None:
        samples = {v: sample for v, sample in samples.items() if v in among}
    pair = _best_two(samples, metric.higher_is_better)
    if pair is None:
        return None
    best, runner_up = pair

    def gain_over(other: str) -> Difference:
        if metric.higher_is_better:
            return difference(samples[best], samples[other])
        return difference(samples[other], samples[best])

    p_all, weakest = weakest_comparison({v: gain_over(v) for v in samples if v != best})
    return Finding(claim, metric, best, runner_up, gain_over(runner_up), "", p_all, weakest, topic)


def weakest_comparison(gains: dict[str, Difference]) -> tuple[float | None, str]:
    """The largest p among the best's comparisons with every other variant, and whose it is;
    None where any comparison has no p (one seed)."""
    if not gains or any(g.p is None for g in gains.values()):
        return None, ""
    weakest = max(gains, key=lambda v: gains[v].p)
    return gains[weakest].p, weakest


def best_samples(evidence: Evidence, dataset: str, evaluator: dict) -> Finding | None:
    """The (variant, sampler) with the lowest FD against the best pair of any other variant."""
    candidates: dict[tuple[str, str], Sample] = {}
    for sampler in SAMPLERS:
        key = f"sample_{sampler}_fd"
        excluded = unrankable(evidence, dataset, key)  # capped, or under half of the classes
        for variant, sample in evidence.samples(dataset, key).items():
            if variant not in excluded:
                candidates[(variant, sampler)] = sample
    if not candidates:
        return None
    best = min(candidates, key=lambda k: candidates[k].mean)
    others = {k: s for k, s in candidates.items() if k[0] != best[0]}
    if not others:
        return None
    runner_up = min(others, key=lambda k: others[k].mean)
    reference = evaluator["reference"]
    context = (
        f"the {reference_label(reference)} scores {format_value(float(reference['fd']))}, "
        "what real held-out images achieve"
    )
    p_all, weakest = weakest_comparison(
        {f"{k[0]} (`{k[1]}`)": difference(s, candidates[best]) for k, s in others.items()}
    )
    return Finding(
        f"with the `{best[1]}` sampler has the lowest Fréchet distance of any sampler",
        describe(f"sample_{best[1]}_fd"),
        best[0],
        f"{runner_up[0]} (`{runner_up[1]}`)",
        difference(candidates[runner_up], candidates[best]),
        context,
        p_all,
        weakest,
        f"the Fréchet distance of samples (any sampler; {best[0]}'s from `{best[1]}`)",
    )


SPLIT_NAMES = {"val": "validation", "train": "train", "test": "test"}


def reference_label(reference: dict) -> str:
    """``validation split (reference, n=500)``: the row of real images each table compares to."""
    split = SPLIT_NAMES.get(reference.get("split", "val"), reference.get("split"))
    return f"{split} split (reference, n={int(reference['count'])})"


PROTOCOL_GROUPS = {
    "none": "among the models trained on grey levels",
    "dynamic": "among the models trained on dynamically binarised data (Burda et al. 2015)",
}


def likelihood_findings(
    evidence: Evidence, dataset: str, binarize: dict[str, str] | None
) -> list[Finding | None]:
    """The NLL finding within each training protocol: a model trained on binarised data against
    one trained on grey levels would measure the protocol as much as the model."""
    if not binarize:
        claim = "has the lowest NLL on the binarised test split"
        topic = "the NLL on the binarised test split"
        return [compare_best(evidence, dataset, "nll_iw", claim, topic=topic)]
    found = []
    for protocol, among_text in PROTOCOL_GROUPS.items():
        group = {v for v, b in binarize.items() if b == protocol}
        found.append(
            compare_best(
                evidence,
                dataset,
                "nll_iw",
                f"has the lowest NLL on the binarised test split {among_text}",
                among=group,
                topic=f"the NLL on the binarised test split {among_text}",
            )
        )
    return found


def collect(
    evidence: Evidence, dataset: str, evaluator: dict, binarize: dict[str, str] | None = None
) -> list[Finding]:
    found = [
        compare_best(
            evidence,
            dataset,
            "recon_mse",
            "has the lowest reconstruction MSE",
            topic="the reconstruction MSE",
        )
    ]
    for kind in NOISE_KINDS:
        found.append(
            compare_best(
                evidence,
                dataset,
                f"robust_{kind}_mse_corrupted",
                f"is the most robust to *{kind}* corruption (lowest MSE from corrupted inputs, "
                "mean over the levels above 0)",
                topic=f"the MSE from *{kind}*-corrupted inputs (mean over the levels above 0)",
            )
        )
    found.append(best_samples(evidence, dataset, evaluator))
    found += likelihood_findings(evidence, dataset, binarize)
    found.append(
        compare_best(
            evidence,
            dataset,
            "gaussian_nll_iw",
            "has the lowest Gaussian NLL (density on grey levels)",
            topic="the Gaussian NLL (density on grey levels)",
        )
    )
    found.append(
        compare_best(
            evidence,
            dataset,
            "probe_accuracy",
            "has the highest linear-probe accuracy",
            topic="the linear-probe accuracy",
        )
    )
    return [f for f in found if f is not None]


def _amount(finding: Finding) -> tuple[str, int]:
    gain = finding.gain
    half = None if gain.low is None else (gain.high - gain.low) / 2
    decimals = decimals_for(gain.estimate, spread=half)
    unit = f" {finding.metric.unit}" if finding.metric.unit in SPOKEN_UNITS else ""
    direction = "higher" if finding.metric.higher_is_better else "lower"
    value = fixed(abs(gain.estimate), estimate_decimals(gain.estimate, decimals))
    return f"{value}{unit} {direction}", decimals


def verdict(finding: Finding, adjusted: float | None, family: int, decimals: int) -> str:
    """The interval, what it covers where that is less than both noise sources, and whether the
    finding is resolved under Holm's rule."""
    gain = finding.gain
    if not gain.resolvable:
        return f"not resolved with {gain.seeds_text}: one seed cannot measure training noise"
    ci = interval_text(gain, decimals)
    if not gain.covers_images:
        ci += f" over training seeds only ({finding.metric.label} has no per-image values)"
    if not gain.excludes_zero:
        return f"{ci}: not resolved with {gain.seeds_text}"
    weakest = ""
    if finding.weakest and finding.weakest != finding.runner_up:
        weakest = f", decided by its least clear comparison, against {finding.weakest}"
    if adjusted is not None and adjusted < ALPHA:
        return f"{ci}; resolved (Holm-adjusted p = {adjusted:.2g}{weakest})"
    return (
        f"{ci}; not resolved after Holm's adjustment over {family} findings "
        f"(adjusted p = {adjusted:.2g}{weakest})"
    )


def resolved(finding: Finding, adjusted: float | None) -> bool:
    """The claim holds: the interval excludes 0 and Holm's adjusted p is below ALPHA."""
    return finding.gain.excludes_zero and adjusted is not None and adjusted < ALPHA


def sentence(finding: Finding, adjusted: float | None, family: int) -> str:
    """Opens with its verdict: a resolved finding states its claim ("**X** has the lowest
    MSE: … lower than Y"); an unresolved one never makes it ("**X** and Y are not resolved on
    MSE: X is … lower, …"), however its means are ordered."""
    amount, decimals = _amount(finding)  # the gain is >= 0: the best is chosen by its mean
    detail = verdict(finding, adjusted, family, decimals)
    if resolved(finding, adjusted):
        text = f"**{finding.best}** {finding.claim}: {amount} than {finding.runner_up}, {detail}"
    else:
        topic = finding.topic or finding.metric.label
        text = (
            f"**{finding.best}** and {finding.runner_up} are not resolved on {topic}: "
            f"{finding.best} is {amount}, {detail}"
        )
    if finding.context:
        text += f"; {finding.context}"
    return text + "."


NO_INTERVAL = (
    "No finding can be resolved: with one seed on a side there is no measure of training noise "
    "to build an interval from."
)


def sentences(found: list[Finding]) -> tuple[list[str], int]:
    """Each finding's sentence, resolved under Holm's adjustment over the findings that have a
    p-value, and how many those are (the family the rule names)."""
    tested = [i for i, f in enumerate(found) if f.p is not None]
    adjusted = dict(zip(tested, holm([found[i].p for i in tested]), strict=True))
    return [sentence(f, adjusted.get(i), len(tested)) for i, f in enumerate(found)], len(tested)


def findings_text(
    evidence: Evidence, dataset: str, evaluator: dict, binarize: dict[str, str] | None = None
) -> tuple[list[str], str]:
    """The finding sentences and the one sentence stating the multiple-comparison rule.
    ``binarize`` (variant -> its params ``binarize``) keeps likelihood findings within one
    training protocol."""
    found = collect(evidence, dataset, evaluator, binarize)
    items, tested = sentences(found)
    if not tested:
        return items, NO_INTERVAL
    rule = (
        f"A finding is resolved only when its Holm-adjusted p < {ALPHA:g} over the {tested} "
        "comparisons above that have an interval (Holm 1979: at most a 5% chance of any false "
        "claim among them); a finding claims the best against every other variant, so its p "
        "is the largest over those comparisons (an intersection-union test), each from the "
        "same Welch t statistic and degrees of freedom as the 95% CIs, which cover training "
        "seeds and, where the metric has per-image values, the finite test set; the CI shown "
        "is against the runner-up and is itself not adjusted."
    )
    return items, rule
