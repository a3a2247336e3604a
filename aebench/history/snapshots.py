"""One commit's committed results, as the history compares them.

A *section* is one committed report (the default run, the studies, the full MNIST); a
*snapshot* is what one commit holds of it: the headline metrics' summaries, the per-run values
where ``runs.csv`` was committed, the hardware class it ran on and, per variant, a digest of the
settings that produced it. Two snapshots of a variant are comparable only where hardware class
and settings digest both agree.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
import yaml

from aebench.compare import CompareError, Stat, parse_environment, split_stats
from aebench.history.git_store import Commit, GitStore
from aebench.report.headline import HEADLINE

UNKNOWN_HARDWARE = "not recorded"
# Timing values depend on the machine's load, not the model: never drawn as results.
TIMING_MARKERS = ("seconds", "_time", "per_second", "wall")

SeriesKey = tuple[str, str, str]  # (dataset, variant, metric)


@dataclass(frozen=True)
class Section:
    """A committed report: where its files live, and how its metrics file is laid out."""

    name: str
    title: str
    report_dir: str
    nested: bool = False  # {study: {dataset: {variant: {metric: mean over seeds}}}}
    headline_only: bool = True  # draw the headline table's metrics (studies draw what they hold)

    def path(self, name: str) -> str:
        return f"{self.report_dir}/{name}"

    @property
    def files(self) -> list[str]:
        """The files whose change makes a commit part of this section's history."""
        return [self.path(n) for n in ("metrics.json", "runs.csv", "environment.json")]


SECTIONS = (
    Section("default", "Default run", "reports"),
    Section("studies", "Studies", "reports/studies", nested=True, headline_only=False),
    Section("full_mnist", "Full MNIST", "reports/full_mnist"),
)


@dataclass
class Snapshot:
    section: Section
    commit: Commit
    stats: dict[SeriesKey, Stat]
    hardware: str
    runs: pd.DataFrame | None = None  # dataset, variant, seed, metric columns
    settings: dict[tuple[str, str], str] = field(default_factory=dict)  # (dataset, variant)


def is_timing(metric: str) -> bool:
    return any(marker in metric for marker in TIMING_MARKERS)


def hardware_class(environment: dict | None) -> str:
    """What decides the bits a run produces: the GPU, or the CPU vendor, kernel path and thread
    count (an AMD and an Intel CPU on the same AVX-512 path do not give identical bits)."""
    if not environment:
        return UNKNOWN_HARDWARE
    devices = [str(d) for d in environment.get("devices") or []]
    if any(d.startswith("cuda") for d in devices):
        return f"GPU {environment.get('gpu', '?')}"
    model = str(environment.get("cpu_model", "?"))
    vendor = next((v for v in ("Intel", "AMD", "Apple") if v.lower() in model.lower()), model)
    threads = environment.get("torch_threads", "?")
    plural = "" if threads == 1 else "s"
    return f"CPU {vendor} {environment.get('cpu_capability', '?')}, {threads} thread{plural}"


def flat_stats(payload: dict, keep: Iterable[str] | None) -> dict[SeriesKey, Stat]:
    """The report's flat ``dataset.variant.metric.mean|std|count`` file; evaluator scalars and
    metrics outside ``keep`` (None: all but timings) left out."""
    wanted = None if keep is None else set(keep)
    numbers = {}
    for key, value in payload.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key!r} is {value!r}, expected a number")
        numbers[key] = float(value)
    out = {}
    for key, stat in split_stats(numbers).items():
        parts = key.split(".", 2)
        if len(parts) != 3:
            raise ValueError(f"{key!r} is not dataset.variant.metric")
        dataset, variant, metric = parts
        if variant == "evaluator" or is_timing(metric):
            continue
        if wanted is None or metric in wanted:
            out[(dataset, variant, metric)] = stat
    return out


def nested_stats(payload: dict) -> dict[SeriesKey, Stat]:
    """The studies' ``{study: {dataset: {variant: {metric: mean over seeds}}}}``; each series is
    named ``study: variant`` (a variant can sit in several studies)."""
    out = {}
    for study, datasets in payload.items():
        for dataset, variants in datasets.items():
            for variant, metrics in variants.items():
                for metric, value in metrics.items():
                    if isinstance(value, int | float) and not is_timing(metric):
                        out[(dataset, f"{study}: {variant}", metric)] = Stat(float(value))
    return out


def with_seed_spread(stats: dict[SeriesKey, Stat], runs: pd.DataFrame) -> dict[SeriesKey, Stat]:
    """The studies' means with their std and seed count from the committed per-run values (the
    metrics file holds means only), where those values agree with the mean."""
    out = dict(stats)
    for key, stat in stats.items():
        values = seed_values(runs, key)
        if values is None or not agrees(values, stat):
            continue
        std = float(values.std(ddof=1)) if len(values) > 1 else None
        out[key] = Stat(stat.mean, std, len(values))
    return out


def agrees(values: pd.Series, stat: Stat) -> bool:
    """Whether per-seed values are the ones a committed summary was computed from (a runs table
    left stale beside new metrics is not evidence about them)."""
    if stat.count is not None and stat.count != len(values):
        return False
    return math.isclose(float(values.mean()), stat.mean, rel_tol=1e-9, abs_tol=1e-12)


def seed_values(runs: pd.DataFrame | None, key: SeriesKey) -> pd.Series | None:
    """The per-seed values of a series in a committed runs table, indexed by seed."""
    dataset, variant, metric = key
    if runs is None or not {"dataset", "variant", "seed", metric} <= set(runs.columns):
        return None
    rows = runs[(runs["dataset"] == dataset) & (runs["variant"] == study_variant(variant))]
    if ": " in variant:
        if "study" not in runs:
            return None
        rows = rows[rows["study"] == variant.split(": ", 1)[0]]
    values = rows.drop_duplicates("seed").set_index("seed")[metric].dropna()
    return values if len(values) else None


def study_variant(series_variant: str) -> str:
    """The run's own variant name in a series name ``study: variant``."""
    return series_variant.split(": ", 1)[-1]


class SettingsDigests:
    """Per commit and variant, a digest of what produced the variant's results.

    Where the commit has resolved settings files (``settings/train|evaluate/<variant>.json``,
    ``settings/data|evaluator/<dataset>.json``: the sample metrics score with the evaluator's
    features, so a retrained evaluator is another experiment) their blob ids are the digest;
    before those existed, the variant's ``params.yaml`` entry with the ``train``, ``evaluate``,
    ``evaluator`` and data sections. The two
    forms never match, so the commit that introduced the settings files starts a new experiment:
    a break the history states rather than a join it cannot check.
    """

    def __init__(self, store: GitStore) -> None:
        self.store = store
        self._params: dict[str, dict] = {}

    def digest(self, commit: Commit, dataset: str, variant: str) -> str:
        name = study_variant(variant)
        ids = [
            self.store.blob(commit, f"settings/{kind}/{name}.json")
            for kind in ("train", "evaluate")
        ]
        if ids[0] is not None:
            shared = [f"settings/{kind}/{dataset}.json" for kind in ("data", "evaluator")]
            others = [self.store.blob(commit, path) for path in shared]
            parts = [found[0] if found else "-" for found in (*ids, *others)]
            return _sha("settings", *parts)
        params = self._params_at(commit)
        variants = params.get("variants") or {}
        entry = variants.get(name, variants.get(name.split("--")[0]))
        context = {k: params.get(k) for k in ("train", "evaluate", "evaluator", "data", "datasets")}
        if name not in variants:  # a generated study variant: the studies section defines it
            context["studies"] = params.get("studies")
        return _sha("params", json.dumps([entry, context], sort_keys=True, default=str))

    def _params_at(self, commit: Commit) -> dict:
        if commit.full not in self._params:
            text = self.store.text(commit, "params.yaml")
            try:
                parsed = yaml.safe_load(text) if text else {}
            except yaml.YAMLError:
                parsed = {}
            self._params[commit.full] = parsed if isinstance(parsed, dict) else {}
        return self._params[commit.full]


def _sha(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def read_snapshot(
    store: GitStore, digests: SettingsDigests, section: Section, commit: Commit
) -> Snapshot | None:
    """The section as ``commit`` holds it; None where it holds no metrics file. A file that
    cannot be read raises :class:`CompareError` naming it and the commit."""
    path = section.path("metrics.json")
    found = store.blob(commit, path)
    if found is None:
        return None
    try:
        payload = json.loads(found[1].decode("utf-8"))
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        if section.nested:
            stats = nested_stats(payload)
        else:
            stats = flat_stats(payload, HEADLINE if section.headline_only else None)
        runs_blob = store.blob(commit, section.path("runs.csv"))
        runs = pd.read_csv(io.BytesIO(runs_blob[1])) if runs_blob else None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as err:
        # json, pandas' parser and empty-file errors are ValueErrors too
        raise CompareError(f"{path} or runs.csv at {commit.short} cannot be read: {err}") from err
    if section.nested and runs is not None:
        stats = with_seed_spread(stats, runs)
    environment = parse_environment(store.text(commit, section.path("environment.json")))
    settings = {
        (dataset, variant): digests.digest(commit, dataset, variant)
        for dataset, variant in {(d, v) for d, v, _ in stats}
    }
    return Snapshot(section, commit, stats, hardware_class(environment), runs, settings)
