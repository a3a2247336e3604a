"""What each metric key means: label, unit, which direction is better, and where it comes from.

One table serves the report's column headers, its glossary and the comparison tool, so a metric is
described in exactly one place. Keys built from a prefix (``sample_<sampler>_<stat>``,
``robust_<kind>_<stat>``) are described by their stat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aebench.spec import NOISE_KINDS


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool | None  # None: no better direction (a cost, a count, or a target)
    meaning: str
    reference: str = ""
    target: float | None = None  # ranked by the distance from this value (density: 1)

    @property
    def ranked(self) -> bool:
        """Whether the report may call one variant the best on this metric."""
        return self.higher_is_better is not None or self.target is not None

    @property
    def arrow(self) -> str:
        if self.target is not None:
            return f"→ {self.target:g}"
        return {True: "↑", False: "↓", None: ""}[self.higher_is_better]

    @property
    def header(self) -> str:
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit} {self.arrow}".strip()

    @property
    def direction(self) -> str:
        """How the metric is ranked, in words, for the glossary."""
        if self.target is not None:
            return (
                f"target {self.target:g}: ranked by |{self.label.lower()} − {self.target:g}|, "
                "the nearest is best; never ranked as a maximum"
            )
        return {True: "higher is better", False: "lower is better", None: "not ranked"}[
            self.higher_is_better
        ]


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
        "Importance-sampled negative log-likelihood of the binarised test split under a "
        "Bernoulli decoder, K importance samples per image. Comparable with published "
        "binarised-MNIST numbers only for models trained on dynamically binarised data.",
        "Burda et al. 2015",
    ),
    Metric(
        "neg_elbo",
        "−ELBO",
        "nats/image",
        False,
        "Negative evidence lower bound of a Bernoulli decoder (one posterior sample per image, "
        "closed-form KL) on the same binarised test split; an upper bound on the NLL.",
        "Kingma & Welling 2014",
    ),
    Metric(
        "gaussian_nll_iw",
        "Gaussian NLL",
        "nats/image",
        False,
        "Importance-sampled negative log-density of the grey-level test images under a "
        "Gaussian decoder (fixed standard deviation). A density on continuous values: it can be "
        "negative and is never comparable with a Bernoulli NLL.",
        "Burda et al. 2015",
    ),
    Metric(
        "gaussian_neg_elbo",
        "Gaussian −ELBO",
        "nats/image",
        False,
        "Negative evidence lower bound of a Gaussian decoder on the grey-level test images; an "
        "upper bound on the Gaussian NLL.",
        "Kingma & Welling 2014",
    ),
    Metric(
        "nll_importance_samples",
        "K",
        "",
        None,
        "Importance samples per image used for the NLL (K).",
    ),
    Metric("parameters", "Parameters", "", None, "Trainable parameters of the model."),
    Metric(
        "best_epoch",
        "Best epoch",
        "",
        None,
        "Epoch with the lowest validation objective; its checkpoint is the one evaluated.",
    ),
    Metric(
        "stop_epoch",
        "Epochs trained",
        "",
        None,
        "Last epoch trained: where the patience rule stopped training, or the epoch cap "
        "(`train.max_epochs`, or the variant's own).",
    ),
    Metric(
        "stopped_at_cap",
        "At cap",
        "",
        None,
        "1 when training reached its epoch cap before the patience rule stopped "
        "it (it may not have converged), else 0; its mean is the share of seeds at the cap.",
    ),
    Metric(
        "recon_train_copy_rate",
        "Copy rate, training reconstructions",
        "",
        None,
        "The copy rate of the model's reconstructions of a fixed subset of training images (as "
        "many as every sampler draws): what memorising would score for this model, read beside "
        "its test reconstructions' rate.",
    ),
    Metric(
        "recon_train_mse",
        "MSE, training reconstructions",
        "per pixel",
        None,
        "Reconstruction MSE on the same training images: below the test MSE by as much as the "
        "model fits its training images better than new ones.",
    ),
    Metric(
        "chain_mixed",
        "Chain mixed",
        "",
        None,
        "1 when the DAE chain's windows agreed with its last window from at least the trace's "
        "midpoint on, on every seed (the chain stage's stationarity rule), else 0: no drift was "
        "resolved, which is not proof that the chain samples the data; a chain that did not "
        "mix is shown and never ranked.",
    ),
    Metric(
        "chain_burn_in",
        "Chain burn-in",
        "steps",
        None,
        "Chain steps discarded before the first draw scored: where every later window agreed "
        "with the last, on every seed (the whole trace where the chain did not mix).",
    ),
    Metric(
        "chain_sampling_thin",
        "Steps between draws",
        "steps",
        None,
        "Steps between two scored draws of one chain: the draws each chain gives are spread "
        "over the trace after the burn-in (at least `evaluate.chain.thin`).",
    ),
    Metric(
        "chain_denoise_mse_grey",
        "Denoising MSE, grey input",
        "per pixel",
        None,
        "MSE against the clean test image of the denoised corrupted test image: what the DAE "
        "was trained to do.",
    ),
    Metric(
        "chain_denoise_mse_state",
        "Denoising MSE, chain-like input",
        "per pixel",
        None,
        "The same, from a corrupted state drawn as the chain draws one with the test image as "
        "its mean (binary for a Bernoulli decoder): above the grey-input MSE, the chain feeds "
        "the model inputs it was not trained on.",
    ),
    Metric(
        "val_gain_10",
        "Val. gain, 10 epochs to the best",
        "nats/image",
        None,
        "How much the validation objective improved over the 10 epochs before the best epoch: "
        "near 0 for a run that has converged.",
    ),
    Metric(
        "val_gain_10_rel",
        "Val. gain, relative",
        "",
        None,
        "That gain divided by |best validation objective|.",
    ),
    Metric(
        "converged",
        "Converged",
        "",
        None,
        "1 when the run counts as converged by the stated rule: stopped by patience, and its "
        "validation objective fell by at most `train.min_delta` per epoch on average over the "
        "10 epochs before its best; else 0 (early-stopped while still improving, or capped).",
    ),
    Metric(
        "lr_reductions",
        "LR halvings",
        "",
        None,
        "How many times the plateau schedule cut the learning rate (by "
        "`train.lr_plateau_factor`) before training stopped.",
    ),
    Metric(
        "train_subset_loss",
        "Train objective (fixed subset)",
        "nats/image",
        None,
        "The kept model's training objective on a fixed subset of the training images (as "
        "many as the validation split), scored as the validation images are: eval mode, the "
        "same corruption and sampling draws, one fixed binarisation.",
    ),
    Metric(
        "val_train_gap",
        "Val. − train gap",
        "nats/image",
        None,
        "Best validation objective minus the training objective on the fixed subset, measured "
        "the same way for every family: how far early stopping left the model from fitting its "
        "training images better than unseen ones (larger: more overfitting).",
    ),
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
        None,
        "How many test-split k-NN balls (k = 5) contain each image, over k: about 1 for images "
        "distributed like the test split, above 1 where images crowd the densest regions.",
        "Naeem et al. 2020",
        target=1.0,
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
    Metric(
        "copy_rate",
        "Copy rate",
        "",
        None,
        "Memorisation: share of images whose nearest train image (evaluator features) is nearer "
        "than the 5% quantile of the test images' nearest-train distances, so held-out real "
        "images score about 0.05. No better direction: compare it with the reference row. A "
        "screen, not a proof: sharp, typical images near dense training regions also score "
        "high (reconstructions of held-out test images score 0.06–0.08 on mnist5k) and blurry "
        "samples score low, so only a rate well above the reference's suggests copying.",
    ),
)

_DEGRADATION = (
    "{name} from corrupted inputs relative to the model's own clean {name}: corrupted / clean "
    "− 1 (a relative change, {sign}). Shown beside the ranked column, never ranked: a model that "
    "is poor on clean images can degrade little."
)
ROBUST_STATS = _metrics(
    Metric(
        "mse_corrupted",
        "MSE corrupted",
        "per pixel",
        False,
        "Reconstruction MSE against the clean image from corrupted inputs, mean over the grid's "
        "levels above 0 (the clean level excluded): the quality a user gets under corruption.",
    ),
    Metric(
        "mse_degradation",
        "MSE degradation",
        "relative",
        None,
        _DEGRADATION.format(name="MSE", sign="+1 means twice the clean error"),
    ),
    Metric(
        "ssim_corrupted",
        "SSIM corrupted",
        "",
        True,
        "SSIM of the output against the clean image from corrupted inputs, mean over the "
        "levels above 0.",
    ),
    Metric(
        "ssim_degradation",
        "SSIM degradation",
        "relative",
        None,
        _DEGRADATION.format(name="SSIM", sign="negative is a loss"),
    ),
    Metric(
        "probe_corrupted",
        "Probe corrupted",
        "",
        True,
        "Linear-probe accuracy on codes of corrupted inputs, mean over the levels above 0.",
    ),
    Metric(
        "probe_degradation",
        "Probe degradation",
        "relative",
        None,
        _DEGRADATION.format(name="probe accuracy", sign="negative is a loss"),
    ),
)

SAMPLER_MEANING = {
    "recon": "reconstructions of the test split",
    "prior": "decoded draws from the N(0, I) prior",
    "gmm": "decoded draws from a Gaussian mixture fitted on the train codes "
    "(`evaluate.gmm_components` components; Ghosh et al. 2020)",
    "chain": "the DAE Markov chain of Bengio et al. 2013: corrupt the state, then draw the next "
    "state from P(X|X̃) (the DVAE first draws its code z ~ q(z|X̃)); what is scored and shown is "
    "the mean of P(X|X̃), drawn from each chain at evenly spaced steps (a multiple of "
    "`evaluate.chain.thin`) over the trace after the burn-in its stationarity rule chose (the "
    "chain stage)",
}
LIKELIHOOD_BERNOULLI = ("nll_iw", "neg_elbo")
LIKELIHOOD_GAUSSIAN = ("gaussian_nll_iw", "gaussian_neg_elbo")
CONVERGENCE = (
    "best_epoch",
    "stop_epoch",
    "val_gain_10",
    "val_gain_10_rel",
    "converged",
    "lr_reductions",
    "val_train_gap",
)
COST = ("parameters", "stop_epoch")
REFERENCE_PREFIX = "reference_"


def describe(key: str) -> Metric:
    """The glossary entry for ``key``; unknown keys get a neutral entry instead of failing."""
    if key in PLAIN:
        return PLAIN[key]
    for prefix, stats, names in (
        ("sample_", SAMPLE_STATS, tuple(SAMPLER_MEANING)),
        ("robust_", ROBUST_STATS, NOISE_KINDS),
    ):
        for name in names:
            for stat, metric in stats.items():
                if key == f"{prefix}{name}_{stat}":
                    label = metric.label if stats is SAMPLE_STATS else f"{name} {metric.label}"
                    return replace(metric, key=key, label=label)
    stat = key.removeprefix(REFERENCE_PREFIX)  # the evaluator's validation-vs-test reference
    if key.startswith(REFERENCE_PREFIX) and stat in SAMPLE_STATS:
        return replace(SAMPLE_STATS[stat], key=key, label=f"reference {SAMPLE_STATS[stat].label}")
    return Metric(key, key, "", None, "")


def glossary_entries() -> list[Metric]:
    """Every metric family once, for the report's glossary."""
    return [*PLAIN.values(), *SAMPLE_STATS.values(), *ROBUST_STATS.values()]
