"""The metrics of the report's headline table: what the report leads with, and what
``aebench history`` draws across commits. Kept apart from the report's content so the history
reads it without loading the models."""

from aebench.spec import NOISE_KINDS

HEADLINE = (
    "recon_mse",
    "recon_ssim",
    *(f"robust_{kind}_mse_corrupted" for kind in NOISE_KINDS),
    "sample_gmm_fd",
    "sample_gmm_precision",
    "sample_gmm_recall",
    "probe_accuracy",
    "nll_iw",
)
