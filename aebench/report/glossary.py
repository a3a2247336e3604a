"""What each metric key means: label, unit, which direction is better, and where it comes from.

One table serves the report's column headers, its glossary and the comparison tool, so a metric is
described in exactly one place. Keys built from a prefix (``sample_<sampler>_<stat>``,
``robust_<kind>_<stat>``) are described by their stat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aebench.config import NOISE_KINDS


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool | None  # None: neither direction is "better" (a cost or a count)
    meaning: str
    reference: str = ""

    @property
    def arrow(self) -> str:
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]

    @property
    def header(self) -> str:
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit} {self.arrow}".strip()


def _metrics(*entries: Metric) -> dict[str, Metric]:
    return {m.key: m for m in entries}


PLAIN = _metrics(
    Metric(
        "recon_mse",
        "MSE",
        "per pixel",
        False,
        "Mean squared error between a clean test image and its reconstruction.",
    ),
    Metric(
        "recon_bce",
        "BCE",
        "nats/image",
        False,
        "Binary cross-entropy of the test image under the reconstruction's pixel "
        "intensities, summed over pixels.",
    ),
    Metric(
        "recon_psnr",
        "PSNR",
        "dB",
        True,
        "Peak signal-to-noise ratio of the reconstruction, data range 1 (capped at 100 dB).",
    ),
    Metric(
        "recon_ssim",
        "SSIM",
        "",
        True,
        "Structural similarity of the reconstruction: Gaussian window sigma 1.5, 11×11, or "
        "the largest odd size that fits (7×7 on 8×8 images); mean over the valid region.",
        "Wang et al. 2004",
    ),
    Metric(
        "probe_accuracy",
        "Probe acc.",
        "",
        True,
        "Test accuracy of a logistic regression fitted on the encoder's mean codes of the "
        "train split (how linearly the classes separate in code space).",
    ),
    Metric(
        "nll_iw",
        "NLL",
        "nats/image",
        False,
        "Importance-sampled negative log-likelihood of the test split; Bernoulli decoders on "
        "the test split binarised once with a fixed seed, Gaussian decoders on [0, 1] "
        "intensities (the two are not comparable).",
        "Burda et al. 2015",
    ),
    Metric(
        "neg_elbo",
        "−ELBO",
        "nats/image",
        False,
        "Negative evidence lower bound (one posterior sample per image, closed-form KL), "
        "on the same data as the NLL; an upper bound on it.",
        "Kingma & Welling 2014",
    ),
    Metric(
        "nll_importance_samples", "K", "", None, "Importance samples per image used for the NLL."
    ),
    Metric("train_seconds", "Train time", "s", None, "Wall-clock seconds of training."),
    Metric("eval_seconds", "Eval time", "s", None, "Wall-clock seconds of evaluation."),
    Metric("parameters", "Parameters", "", None, "Trainable parameters of the model."),
    Metric(
        "test_accuracy",
        "Evaluator acc.",
        "",
        True,
        "Test accuracy of the per-dataset CNN whose features define the sample metrics.",
    ),
)

SAMPLE_STATS = _metrics(
    Metric(
        "fd",
        "FD",
        "",
        False,
        "Fréchet distance between Gaussians fitted to evaluator features of the images and "
        "of the test split. In the evaluator's feature space: not an Inception FID.",
        "Heusel et al. 2017",
    ),
    Metric(
        "precision",
        "Precision",
        "",
        True,
        "Share of images inside the test split's k-NN manifold (k = 3): fidelity.",
        "Kynkäänniemi et al. 2019",
    ),
    Metric(
        "recall",
        "Recall",
        "",
        True,
        "Share of test images inside the images' k-NN manifold (k = 3): diversity.",
        "Kynkäänniemi et al. 2019",
    ),
    Metric(
        "density",
        "Density",
        "",
        True,
        "How many test-split k-NN balls (k = 5) contain each image, over k; about 1 for "
        "images distributed like the test split.",
        "Naeem et al. 2020",
    ),
    Metric(
        "coverage",
        "Coverage",
        "",
        True,
        "Share of test images whose k-NN ball (k = 5) contains at least one image.",
        "Naeem et al. 2020",
    ),
    Metric(
        "class_coverage",
        "Class cov.",
        "",
        True,
        "Share of classes the evaluator assigns to at least 1% of the images.",
    ),
    Metric(
        "class_kl",
        "Class KL",
        "nats",
        False,
        "KL divergence of the evaluator's predicted class histogram of the images from the "
        "test split's.",
    ),
)

ROBUST_STATS = _metrics(
    Metric(
        "mse_auc",
        "MSE area",
        "per pixel",
        False,
        "Area under the curve of reconstruction MSE (output vs clean image) against "
        "corruption level, divided by the level range: the mean MSE over the grid.",
    ),
    Metric(
        "ssim_auc",
        "SSIM area",
        "",
        True,
        "Normalised area under the SSIM-against-level curve (output vs clean image).",
    ),
    Metric(
        "probe_auc",
        "Probe area",
        "",
        True,
        "Normalised area under the curve of linear-probe accuracy on codes of corrupted "
        "inputs against corruption level.",
    ),
)

SAMPLER_MEANING = {
    "recon": "reconstructions of the test split",
    "prior": "decoded draws from the N(0, I) prior",
    "gmm": "decoded draws from a Gaussian mixture fitted on the train codes "
    "(`evaluate.gmm_components` components; Ghosh et al. 2020)",
    "chain": "states of the DAE Markov chain (corrupt, reconstruct; Bengio et al. 2013)",
}
LIKELIHOOD = ("nll_iw", "neg_elbo", "nll_importance_samples")
COST = ("parameters", "train_seconds", "eval_seconds")


def describe(key: str) -> Metric:
    """The glossary entry for ``key``; unknown keys get a neutral entry instead of failing."""
    if key in PLAIN:
        return PLAIN[key]
    for prefix, stats, names in (
        ("sample_", SAMPLE_STATS, tuple(SAMPLER_MEANING)),
        ("robust_", ROBUST_STATS, NOISE_KINDS),
        ("", SAMPLE_STATS, ("floor",)),  # the evaluator's train-vs-test reference
    ):
        for name in names:
            for stat, metric in stats.items():
                if key == f"{prefix}{name}_{stat}":
                    label = metric.label if stats is SAMPLE_STATS else f"{name} {metric.label}"
                    return replace(metric, key=key, label=label)
    return Metric(key, key, "", None, "")


def glossary_entries() -> list[Metric]:
    """Every metric family once, for the report's glossary."""
    return [*PLAIN.values(), *SAMPLE_STATS.values(), *ROBUST_STATS.values()]
