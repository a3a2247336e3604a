"""Comparison figures for the report, written as small, deterministic PNGs.

Every figure is laid out for ~900 px at 100 dpi, draws each variant in the same colour (one palette
keyed by variant name, in run-list order) and is written atomically, so a killed report stage never
leaves a half-written PNG. Each ``*_figure`` function renders, saves, closes its figure and returns
the path; the ``draw_*`` functions return the open matplotlib Figure instead, for tests and
notebooks.
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image
from sklearn.decomposition import PCA

from aebench.io import atomic_path

matplotlib.use("Agg")  # the report stage runs headless

Colour = tuple[float, float, float]
Palette = Mapping[str, Colour]

DPI = 100
WIDTH_IN = 9.0  # 900 px: the width the report shows figures at
NA_GREY = 0.92  # fill of a missing cell in an image grid
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
MAX_SCATTER_POINTS = 2000  # per PCA panel: enough to see structure, keeps the PNG small

_RC = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
}

# metric column -> (name for titles, y-axis label with unit, lower is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "mse": ("Reconstruction MSE", "MSE per pixel", True),
    "psnr": ("Reconstruction PSNR", "PSNR (dB)", False),
    "ssim": ("Reconstruction SSIM", "SSIM (1 = identical)", False),
    "latent_shift": ("Latent shift", "latent shift (spreads of the clean codes)", True),
    "probe_accuracy": ("Linear-probe accuracy", "probe accuracy (fraction correct)", False),
}

# corruption kind -> (panel title, x-axis label saying what the level is)
KINDS: dict[str, tuple[str, str]] = {
    "gaussian": ("Gaussian noise: level = σ", "noise σ (pixel intensities in [0, 1])"),
    "masking": ("Masking: level = fraction zeroed", "fraction of pixels set to 0"),
    "salt_pepper": ("Salt & pepper: level = fraction hit", "fraction of pixels set to 0 or 1"),
}

# corner where the better models sit -> (arrow tail, arrow head) in axes fractions
_CORNERS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "lower left": ((0.17, 0.2), (0.04, 0.05)),
    "lower right": ((0.83, 0.2), (0.96, 0.05)),
    "upper left": ((0.17, 0.8), (0.04, 0.95)),
    "upper right": ((0.83, 0.8), (0.96, 0.95)),
}


# --- shared --------------------------------------------------------------------------------------


def variant_palette(variants: Sequence[str]) -> dict[str, Colour]:
    """One colour per variant, by position in the run list, so every figure agrees.

    Seaborn's colour-blind-safe palette covers up to ten variants; beyond that, evenly spaced hues
    keep the colours distinct instead of repeating them.
    """
    names = list(dict.fromkeys(variants))
    colours = sns.color_palette("colorblind" if len(names) <= 10 else "husl", len(names))
    return {
        name: tuple(float(c) for c in colour) for name, colour in zip(names, colours, strict=True)
    }


def variant_markers(variants: Sequence[str]) -> dict[str, str]:
    """One marker per variant, in palette order: a second cue where two colours look alike."""
    names = list(dict.fromkeys(variants))
    return {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(names)}


def _variant_order(present: pd.Series, palette: Palette | None) -> tuple[list[str], Palette]:
    """The variants in ``present`` in palette order, and the palette (built if not given)."""
    seen = list(dict.fromkeys(present))
    if palette is None:
        palette = variant_palette(seen)
    unknown = [v for v in seen if v not in palette]
    if unknown:
        raise ValueError(f"variants missing from the palette: {', '.join(map(str, unknown))}")
    return [v for v in palette if v in seen], palette


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s): {', '.join(missing)}")


def _variant_handles(order: Sequence[str], palette: Palette, markers: bool) -> list[Line2D]:
    marker_of = variant_markers(list(palette))
    return [
        Line2D([], [], color=palette[v], marker=marker_of[v] if markers else None, label=v)
        for v in order
    ]


def _darker(colour: Colour, factor: float = 0.7) -> Colour:
    """The colour scaled towards black: text stays legible where the palette colour is pale."""
    return tuple(factor * c for c in colour)


def _n_seeds(frame: pd.DataFrame) -> str:
    n = frame.groupby("variant")["seed"].nunique().max() if len(frame) else 0
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _closes_on_error(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Close the figures ``draw`` opened if it fails: the report renders dozens in one process."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> Figure:
        before = set(plt.get_fignums())
        try:
            return draw(*args, **kwargs)
        except BaseException:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
            raise

    return wrapper


@contextmanager
def _style() -> Iterator[None]:
    """The house style, scoped so that rendering a figure changes no global matplotlib state."""
    with sns.axes_style("whitegrid"), plt.rc_context(_RC):
        yield


def _opaque_rgb(rgba: np.ndarray) -> np.ndarray:
    """The render flattened onto white, as uint8 RGB."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)


def _reduce_levels(rgb: np.ndarray, levels: int) -> np.ndarray:
    """Round every channel to ``levels`` evenly spaced values, keeping 0 and 255 exact."""
    step = 255.0 / (levels - 1)
    return np.rint(np.rint(rgb / step) * step).astype(np.uint8)


def encode_png_image(rgb: np.ndarray, levels: int = 256) -> Image.Image:
    """The smallest faithful PIL image for a render, chosen by what it contains.

    - grey only: one channel (a third of RGB, and PNG's filters still work on it);
    - at most 256 colours: an exact palette, ordered by brightness so neighbouring greys stay
      neighbouring indices;
    - more (anti-aliased plot lines): a 256-colour median-cut palette, without dithering.

    ``levels`` < 256 first rounds each channel to that many values: for image grids, whose smooth
    greys are most of the bytes and whose look does not change at 32 levels.
    """
    if levels < 256:
        rgb = _reduce_levels(rgb, levels)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return Image.fromarray(np.ascontiguousarray(rgb[..., 0]))
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8)
    packed |= rgb[..., 2]
    colours, index = np.unique(packed, return_inverse=True)
    if len(colours) > 256:
        return Image.fromarray(rgb).quantize(
            256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    channels = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1)
    order = np.argsort(channels @ np.array([299, 587, 114]), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    image = Image.fromarray(rank[index].reshape(rgb.shape[:2]).astype(np.uint8))
    image.putpalette(channels[order].astype(np.uint8).ravel().tolist())
    return image


def save_png(fig: Figure, path: Path, levels: int = 256) -> Path:
    """Render ``fig`` and write it to ``path`` atomically as a compact PNG; always close it.

    Written through Pillow rather than ``savefig``: no alpha channel, no version stamp, and a
    single channel or palette (see ``encode_png_image``) — about a third of the bytes, which
    depend only on the data.
    """
    try:
        fig.canvas.draw()
        rgb = _opaque_rgb(np.asarray(fig.canvas.buffer_rgba()))
    finally:
        plt.close(fig)
    image = encode_png_image(rgb, levels)
    with atomic_path(Path(path)) as tmp:
        image.save(tmp, format="png", optimize=True, dpi=(DPI, DPI))
    return Path(path)


# --- robustness ----------------------------------------------------------------------------------


def _bottom_legend(fig: Figure, handles: list, max_columns: int = 8) -> None:
    """One legend under all panels: a single row where it fits, else balanced rows."""
    rows = math.ceil(len(handles) / max_columns)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=math.ceil(len(handles) / rows),
        frameon=False,
        handlelength=1.8,
        columnspacing=1.2,
    )


@_closes_on_error
def draw_robustness(
    curves: pd.DataFrame, metric: str = "mse", palette: Palette | None = None
) -> Figure:
    """One panel per corruption kind: ``metric`` against level, a line per variant, ±sd band."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    _require_columns(curves, ("variant", "seed", "kind", "level", metric), "curves")
    if curves.empty:
        raise ValueError("curves is empty")
    order, palette = _variant_order(curves["variant"], palette)
    kinds = list(dict.fromkeys(curves["kind"]))
    name, unit_label, lower_better = METRICS[metric]
    fig, axes = plt.subplots(
        1, len(kinds), figsize=(WIDTH_IN, 3.9), sharey=True, squeeze=False, layout="constrained"
    )
    for ax, kind in zip(axes[0], kinds, strict=True):
        sns.lineplot(
            data=curves[curves["kind"] == kind],
            x="level",
            y=metric,
            hue="variant",
            hue_order=order,
            palette=palette,
            style="variant",
            style_order=order,
            markers=variant_markers(list(palette)),
            dashes=False,
            markersize=5,
            errorbar="sd",
            err_kws={"alpha": 0.15, "linewidth": 0},
            legend=False,
            ax=ax,
        )
        title, x_label = KINDS.get(kind, (f"{kind}: level", "corruption level"))
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.set_ylabel(unit_label)
    better = "lower" if lower_better else "higher"
    fig.suptitle(
        f"{name} from corrupted inputs ({better} is better; mean ± sd over {_n_seeds(curves)})"
    )
    _bottom_legend(fig, _variant_handles(order, palette, markers=True))
    return fig


def robustness_figure(
    curves: pd.DataFrame, path: Path, metric: str = "mse", palette: Palette | None = None
) -> Path:
    """Robustness curves of ``metric`` per corruption kind, saved as a PNG at ``path``.

    ``curves``: columns ``variant, seed, kind, level`` and the metric (``mse``, ``psnr``,
    ``ssim``, ``latent_shift`` or ``probe_accuracy``), one row per run and grid point.
    """
    with _style():
        return save_png(draw_robustness(curves, metric, palette), path)


# --- the DAE chain's trajectory -------------------------------------------------------------------

TRACE_PANELS = (
    ("class_coverage", "class coverage (share of 10 classes)"),
    ("fd", "Fréchet distance to the test split"),
    ("ink", "mean pixel intensity"),
)


@_closes_on_error
def draw_chain_trace(trace: pd.DataFrame, palette: Palette | None = None) -> Figure:
    """Class coverage, FD and ink of each window of the chain's draws against the window's last
    step: a line per variant (mean over seeds, ± sd band), each variant's burn-in as a dotted
    line of its colour and the test split's ink as a dashed one."""
    _require_columns(trace, ("variant", "step", "burn_in", *(m for m, _ in TRACE_PANELS)), "trace")
    order, palette = _variant_order(trace["variant"], palette)
    burn_in = trace.groupby("variant", sort=False)["burn_in"].first()
    fig, axes = plt.subplots(
        1, len(TRACE_PANELS), figsize=(WIDTH_IN, 3.6), squeeze=False, layout="constrained"
    )
    for ax, (metric, label) in zip(axes[0], TRACE_PANELS, strict=True):
        sns.lineplot(
            data=trace,
            x="step",
            y=metric,
            hue="variant",
            hue_order=order,
            palette=palette,
            errorbar="sd",
            marker="o",
            markersize=3,
            legend=False,
            ax=ax,
        )
        for variant in order:
            ax.axvline(burn_in[variant], color=palette[variant], linestyle=":", linewidth=1)
        if metric == "ink" and "test_mean_intensity" in trace:
            ax.axhline(trace["test_mean_intensity"].iloc[0], color="0.4", linestyle="--")
        ax.set_xlabel("chain step (end of window)")
        ax.set_ylabel(label)
    fig.suptitle("DAE Markov chain (Bengio et al. 2013), window by window")
    _bottom_legend(fig, _variant_handles(order, palette, markers=False))
    return fig


def chain_trace_figure(trace: pd.DataFrame, path: Path, palette: Palette | None = None) -> Path:
    """:func:`draw_chain_trace` saved as a PNG at ``path``."""
    with _style():
        return save_png(draw_chain_trace(trace, palette), path)


# --- training curves -----------------------------------------------------------------------------


def _vae_variants(history: pd.DataFrame) -> list[str]:
    """Variants that logged a KL term (vae, dvae; the other families log other terms or none)."""
    if "val_kl" not in history.columns:
        return []
    return list(dict.fromkeys(history.loc[history["val_kl"].notna(), "variant"]))


def _epoch_lines(ax, data: pd.DataFrame, y: str, order: Sequence[str], palette: Palette) -> None:
    """Mean over seeds per epoch with a ±sd band, one colour per variant; with a ``split``
    column, validation solid and train dashed."""
    split = {}
    if "split" in data.columns:
        split = {
            "style": "split",
            "style_order": ["validation", "train"],
            "dashes": {"validation": "", "train": (3, 2)},
        }
    sns.lineplot(
        data=data,
        x="epoch",
        y=y,
        hue="variant",
        hue_order=order,
        palette=palette,
        errorbar="sd",
        err_kws={"alpha": 0.15, "linewidth": 0},
        legend=False,
        ax=ax,
        **split,
    )
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")


@_closes_on_error
def draw_training_curves(history: pd.DataFrame, palette: Palette | None = None) -> Figure:
    """Loss (train dashed, validation solid) and, for the variants with a KL term, its two
    validation terms."""
    _require_columns(history, ("variant", "seed", "epoch", "train_loss", "val_loss"), "history")
    if history.empty:
        raise ValueError("history is empty")
    order, palette = _variant_order(history["variant"], palette)
    vae = [v for v in order if v in _vae_variants(history)]
    fig, axes = plt.subplots(
        1, 3 if vae else 1, figsize=(WIDTH_IN, 3.9), squeeze=False, layout="constrained"
    )
    loss = history.melt(
        id_vars=["variant", "seed", "epoch"],
        value_vars=["train_loss", "val_loss"],
        var_name="split",
        value_name="loss",
    )
    loss["split"] = loss["split"].map({"train_loss": "train", "val_loss": "validation"})
    _epoch_lines(axes[0, 0], loss, "loss", order, palette)
    axes[0, 0].set_title("Training objective")
    axes[0, 0].legend(
        handles=[
            Line2D([], [], color="0.3", label="validation"),
            Line2D([], [], color="0.3", linestyle=(0, (3, 2)), label="train"),
        ],
        loc="upper right",
        fontsize=8.5,
    )
    if vae:
        terms = history[history["variant"].isin(vae)]
        for ax, column, title in (
            (axes[0, 1], "val_recon", "Reconstruction term (validation)"),
            (axes[0, 2], "val_kl", "KL term (validation)"),
        ):
            _epoch_lines(ax, terms, column, vae, palette)
            ax.set_title(title)
    family = "; right: the variants with a KL term" if vae else ""
    fig.suptitle(f"Training curves (mean ± sd over {_n_seeds(history)}{family})")
    _bottom_legend(fig, _variant_handles(order, palette, markers=False))
    return fig


def training_curves_figure(
    history: pd.DataFrame, path: Path, palette: Palette | None = None
) -> Path:
    """Training curves per variant, saved as a PNG at ``path``.

    ``history``: columns ``variant, seed, epoch, train_loss, val_loss`` and, where logged,
    ``val_recon, val_kl``; the VAE-family panels show the variants whose ``val_kl`` is not NaN.
    """
    with _style():
        return save_png(draw_training_curves(history, palette), path)


# --- trade-off scatter ---------------------------------------------------------------------------


# label offsets from its point (points) and the alignment that keeps the text clear of it,
# tried in this order until one overlaps no other label or point
def _label_spots() -> tuple[tuple[tuple[float, float], str, str], ...]:
    """Offsets (points) to try for a label, nearest first: eight directions on rings of growing
    radius, so that a crowded cluster still finds a free spot a little further out."""
    directions = (
        ((1, 0.7), "left", "bottom"),
        ((-1, 0.7), "right", "bottom"),
        ((1, -0.7), "left", "top"),
        ((-1, -0.7), "right", "top"),
        ((1, 0), "left", "center"),
        ((-1, 0), "right", "center"),
        ((0, 1), "center", "bottom"),
        ((0, -1), "center", "top"),
    )
    return tuple(
        ((dx * radius, dy * radius), ha, va)
        for radius in (7, 16, 26, 38, 52)
        for (dx, dy), ha, va in directions
    )


_LABEL_SPOTS = _label_spots()


def _place_labels(
    fig: Figure, ax, labels: list, points: np.ndarray, obstacles: Sequence = ()
) -> None:
    """Move each point label to the first spot that overlaps no placed label, no point and no
    ``obstacles`` (the "better" arrow's text), inside the axes: a deterministic stand-in for
    label repulsion."""
    fig.canvas.draw()  # settles the layout, so display coordinates are final
    renderer = fig.canvas.get_renderer()
    centres = ax.transData.transform(points) if len(points) else np.empty((0, 2))
    taken = [(x - 6, y - 6, x + 6, y + 6) for x, y in centres]
    for artist in obstacles:
        box = artist.get_window_extent(renderer)
        taken.append((box.x0, box.y0, box.x1, box.y1))
    inside = ax.get_window_extent(renderer)
    for label, own in zip(labels, range(len(labels)), strict=True):
        others = [box for i, box in enumerate(taken) if i != own]
        for offset, ha, va in _LABEL_SPOTS:
            label.set_position(offset)
            label.set_horizontalalignment(ha)
            label.set_verticalalignment(va)
            box = label.get_window_extent(renderer)
            clear = not any(
                box.x0 < b[2] and b[0] < box.x1 and box.y0 < b[3] and b[1] < box.y1 for b in others
            )
            within = inside.x0 <= box.x0 and box.x1 <= inside.x1
            if clear and within and inside.y0 <= box.y0 and box.y1 <= inside.y1:
                break
        else:
            label.set_position(_LABEL_SPOTS[0][0])
            label.set_horizontalalignment(_LABEL_SPOTS[0][1])
            label.set_verticalalignment(_LABEL_SPOTS[0][2])
            box = label.get_window_extent(renderer)
        taken.append((box.x0, box.y0, box.x1, box.y1))


LOG_SPAN = 5.0
"""A trade-off axis turns logarithmic when its largest point is this many times its smallest."""


def _spans_wide_range(values: np.ndarray) -> bool:
    values = values[np.isfinite(values)]
    return bool(len(values) and values.min() > 0 and values.max() / values.min() >= LOG_SPAN)


@_closes_on_error
def draw_tradeoff(
    points: pd.DataFrame,
    x_label: str,
    y_label: str,
    palette: Palette | None = None,
    better: str | None = "lower left",
) -> Figure:
    """One labelled point per variant with ±sd error bars; an arrow points to the better corner."""
    _require_columns(points, ("variant", "x_mean", "x_std", "y_mean", "y_std"), "points")
    if better is not None and better not in _CORNERS:
        raise ValueError(f"unknown corner {better!r}; allowed: {', '.join(_CORNERS)}")
    order, palette = _variant_order(points["variant"], palette)
    marker_of = variant_markers(list(palette))
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 5.6), layout="constrained")
    rows = points.drop_duplicates("variant").set_index("variant")
    drawn = [v for v in order if np.isfinite(rows.loc[v, ["x_mean", "y_mean"]]).all()]
    labels = []
    for variant in drawn:
        row = rows.loc[variant]
        ax.errorbar(
            row["x_mean"],
            row["y_mean"],
            xerr=np.nan_to_num(row["x_std"]),
            yerr=np.nan_to_num(row["y_std"]),
            fmt=marker_of[variant],
            color=palette[variant],
            markersize=8,
            capsize=3,
            elinewidth=1.2,
        )
        labels.append(
            ax.annotate(
                variant,
                (row["x_mean"], row["y_mean"]),
                xytext=_LABEL_SPOTS[0][0],
                textcoords="offset points",
                fontsize=9,
                fontweight="bold",
                color=_darker(palette[variant]),
            )
        )
    ax.margins(0.15)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    subtitle = "error bars: ± sd over seeds"
    wide = [
        axis
        for axis, column in (("x", "x_mean"), ("y", "y_mean"))
        if _spans_wide_range(rows.loc[drawn, column].to_numpy(float))
    ]
    for axis in wide:  # one far-off variant would otherwise crowd the rest into a corner
        getattr(ax, f"set_{axis}scale")("log")
    if wide:
        subtitle += f"; log {' and '.join(wide)} axis"
    obstacles = []
    if better is not None:
        tail, head = _CORNERS[better]
        arrow = ax.annotate(
            "better",
            xy=head,
            xytext=tail,
            xycoords="axes fraction",
            ha="center",
            va="center",
            color="0.35",
            arrowprops={"arrowstyle": "->", "color": "0.35", "lw": 1.5},
        )
        obstacles.append(arrow)
        subtitle += f"; {better} is better"
    missing = [v for v in order if v not in drawn]
    if missing:
        subtitle += f"; no value: {', '.join(missing)}"
    ax.set_title(f"{y_label[:1].upper()}{y_label[1:]} against {x_label}\n({subtitle})")
    points_xy = rows.loc[drawn, ["x_mean", "y_mean"]].to_numpy(float)
    _place_labels(fig, ax, labels, points_xy, obstacles)
    return fig


def tradeoff_figure(
    points: pd.DataFrame,
    path: Path,
    x_label: str,
    y_label: str,
    palette: Palette | None = None,
    *,
    better: str | None = "lower left",
) -> Path:
    """Trade-off scatter of two seed-averaged metrics, saved as a PNG at ``path``.

    ``points``: one row per variant, columns ``variant, x_mean, x_std, y_mean, y_std``; a variant
    whose mean is NaN (a metric it does not have) is named in the title instead of plotted.
    ``better`` is the corner where better models sit (``None`` for no arrow).
    """
    with _style():
        return save_png(draw_tradeoff(points, x_label, y_label, palette, better), path)


# --- latent PCA ----------------------------------------------------------------------------------


def principal_components(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes projected on their first two principal components (N×2), and the fraction of the
    total variance each component explains (the numbers shown in the panel titles).

    A full SVD makes the result deterministic; one-dimensional codes get a zero second component.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) < 2:
        raise ValueError(f"codes must be N×D with N >= 2, got shape {codes.shape}")
    k = min(2, codes.shape[1])
    pca = PCA(n_components=k, svd_solver="full")
    projected = pca.fit_transform(codes)
    total = codes.var(axis=0, ddof=1).sum()
    ratio = pca.explained_variance_ / total if total > 0 else np.zeros(k)
    if k < 2:
        projected = np.column_stack([projected, np.zeros(len(codes))])
        ratio = np.append(ratio, 0.0)
    return projected, np.asarray(ratio, dtype=np.float64)


def _interleaved(labels: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` indices, evenly spaced, in round-robin class order: no class is painted
    over all the others just because the test set is sorted by class."""
    keep = np.unique(np.linspace(0, len(labels) - 1, min(limit, len(labels))).round().astype(int))
    kept = labels[keep]
    rank = np.empty(len(kept), dtype=int)
    for cls in np.unique(kept):
        where = kept == cls
        rank[where] = np.arange(where.sum())
    return keep[np.lexsort((kept, rank))]


def _class_colours(n_classes: int) -> np.ndarray:
    return np.asarray(sns.color_palette("tab10" if n_classes <= 10 else "husl", n_classes))


def _checked_labels(variant: str, z: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels).astype(int).ravel()
    if len(labels) != len(z):
        raise ValueError(f"{variant}: {len(z)} codes but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{variant}: labels outside 0..{n_classes - 1}")
    return labels


@_closes_on_error
def draw_latent_pca(
    codes: Mapping[str, tuple[np.ndarray, np.ndarray]], n_classes: int = 10
) -> Figure:
    """A small PCA scatter per variant, coloured by class; the spare last cell holds the legend."""
    if not codes:
        raise ValueError("no codes to plot")
    colours = _class_colours(n_classes)
    ncols = min(4, len(codes) + 1)
    nrows = math.ceil((len(codes) + 1) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(WIDTH_IN, 0.5 + 2.45 * nrows), squeeze=False, layout="constrained"
    )
    flat = axes.ravel()
    for ax, (variant, (z, labels)) in zip(flat, codes.items(), strict=False):
        labels = _checked_labels(variant, z, labels, n_classes)
        projected, ratio = principal_components(z)
        shown = _interleaved(labels, MAX_SCATTER_POINTS)
        ax.scatter(*projected[shown].T, c=colours[labels[shown]], s=4, alpha=0.7, linewidths=0)
        ax.set_title(f"{variant}\nvariance: PC1 {ratio[0]:.0%}, PC2 {ratio[1]:.0%}", fontsize=8.5)
        ax.set_xlabel("PC1 (code units)", fontsize=8)
        ax.set_ylabel("PC2 (code units)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in flat[len(codes) :]:
        ax.set_axis_off()
    handles = [
        Line2D([], [], linestyle="", marker="o", color=colours[c], label=str(c))
        for c in range(n_classes)
    ]
    flat[len(codes)].legend(
        handles=handles, title="class", loc="center", ncol=2 if n_classes > 5 else 1
    )
    fig.suptitle("Test-set codes on their first two principal components (PCA fit per variant)")
    return fig


def latent_pca_figure(
    codes: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, n_classes: int = 10
) -> Path:
    """PCA scatter of test-set codes per variant, saved as a PNG at ``path``.

    ``codes``: variant -> (N×D codes, N integer labels in ``0..n_classes-1``), in run-list order.
    """
    with _style():
        return save_png(draw_latent_pca(codes, n_classes), path)


# --- image grids ---------------------------------------------------------------------------------

GRID_LEVELS = 32  # grey levels kept in a composed image grid: same look, ~half the bytes
PAD = 8  # pixels around labels and the figure edge


def read_grid(path: Path) -> np.ndarray:
    """A saved PNG grid as floats in [0, 1]: H×W when it has no colour (torchvision saves grey
    images as three equal channels), else H×W×3; transparency is flattened onto white."""
    image = np.asarray(mpimg.imread(path), dtype=np.float32)
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        alpha = image[..., 3:4]
        image = image[..., :3] * alpha + (1.0 - alpha)
    grey = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(
        image[..., 0], image[..., 2]
    )
    return image[..., 0] if image.shape[2] == 1 or grey else image[..., :3]


def grid_layout(
    grids: Mapping[tuple[str, str], Path], rows: Sequence[str], columns: Sequence[str]
) -> list[list[Path | None]]:
    """Which PNG fills each (row, column) cell; ``None`` marks an "n/a" cell.

    A grid keyed by a row or column not listed is an error rather than silently dropped.
    """
    stray = [key for key in grids if key[0] not in rows or key[1] not in columns]
    if stray:
        raise ValueError(f"grids for unlisted rows/columns: {stray}")
    return [[grids.get((r, c)) for c in columns] for r in rows]


Box = tuple[int, int, int, int]  # top, left, height, width in canvas pixels


def compose_grids(
    images: Sequence[Sequence[np.ndarray | None]], gap: int = 6
) -> tuple[np.ndarray, list[list[Box]]]:
    """Tile the images into one canvas, each centred in its cell, ``gap`` white pixels apart;
    missing cells are filled with ``NA_GREY``. Returns the canvas and each cell's box.

    Each column is as wide as its widest image, each row as tall as its tallest; the canvas is
    H×W×3 if any image has colour, else H×W.
    """
    present = [img for row in images for img in row if img is not None]
    if not present:
        raise ValueError("no image grids to compose")
    colour = any(img.ndim == 3 for img in present)
    default_h = max(img.shape[0] for img in present)
    default_w = max(img.shape[1] for img in present)
    heights = [max((i.shape[0] for i in row if i is not None), default=default_h) for row in images]
    widths = [
        max((row[j].shape[1] for row in images if row[j] is not None), default=default_w)
        for j in range(len(images[0]))
    ]
    tops = [sum(heights[:i]) + gap * i for i in range(len(heights))]
    lefts = [sum(widths[:j]) + gap * j for j in range(len(widths))]
    shape = (tops[-1] + heights[-1], lefts[-1] + widths[-1])
    canvas = np.ones(shape + ((3,) if colour else ()), dtype=np.float32)
    boxes = [
        [(t, x, h, w) for x, w in zip(lefts, widths, strict=True)]
        for t, h in zip(tops, heights, strict=True)
    ]
    for row, row_boxes in zip(images, boxes, strict=True):
        for img, (top, left, h, w) in zip(row, row_boxes, strict=True):
            if img is None:
                canvas[top : top + h, left : left + w] = NA_GREY
                continue
            if colour and img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            y, x = top + (h - img.shape[0]) // 2, left + (w - img.shape[1]) // 2
            canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
    return canvas, boxes


def _text_width(fig: Figure, text: str, fontsize: float) -> float:
    """Width in pixels that ``text`` takes when drawn on ``fig``."""
    artist = fig.text(0, 0, text, fontsize=fontsize)
    width = artist.get_window_extent(fig.canvas.get_renderer()).width
    artist.remove()
    return width


class _PixelFrame:
    """Figure coordinates from pixel offsets (from the top left), so the canvas lands on whole
    pixels and is shown one screen pixel per canvas pixel."""

    def __init__(self, fig: Figure, width: int, height: int) -> None:
        self.fig, self.width, self.height = fig, width, height
        fig.set_size_inches(width / DPI, height / DPI)

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return x / self.width, 1.0 - y / self.height

    def text(self, x: float, y: float, text: str, **kwargs) -> None:
        self.fig.text(*self.xy(x, y), text, **kwargs)

    def box(self, x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        """(left, bottom, width, height) in figure fractions of a box whose top left is (x, y)."""
        left, bottom = self.xy(x, y + h)
        return left, bottom, w / self.width, h / self.height


@_closes_on_error
def draw_image_grid(
    grids: Mapping[tuple[str, str], Path],
    rows: Sequence[str],
    columns: Sequence[str],
    title: str,
    palette: Palette | None = None,
) -> Figure:
    """Saved PNG grids tiled as rows × columns with labels, shown pixel for pixel.

    The canvas is enlarged by a whole factor to fill ~900 px where it is small, and drawn at
    exactly one screen pixel per canvas pixel with nearest-neighbour sampling: no blur, no moiré.
    """
    layout = grid_layout(grids, rows, columns)
    canvas, boxes = compose_grids([[p if p is None else read_grid(p) for p in r] for r in layout])
    fig = plt.figure(dpi=DPI)
    swatch = 14 if palette else 0
    left = math.ceil(max(_text_width(fig, str(r), 10) for r in rows)) + 2 * PAD + swatch
    scale = max(1, min(4, int((WIDTH_IN * DPI - left - PAD) // canvas.shape[1])))
    canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    wrapped = textwrap.wrap(title, width=max(30, int((left + canvas.shape[1]) / 8.5)))
    top = PAD + 20 * len(wrapped) + 24
    frame = _PixelFrame(fig, left + canvas.shape[1] + PAD, top + canvas.shape[0] + PAD)
    ax = fig.add_axes(frame.box(left, top, canvas.shape[1], canvas.shape[0]))
    grey = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if canvas.ndim == 2 else {}
    ax.imshow(canvas, interpolation="nearest", aspect="auto", resample=False, **grey)
    ax.set_axis_off()
    frame.text(frame.width / 2, PAD, "\n".join(wrapped), ha="center", va="top", fontsize=12)

    def centre(box: Box) -> tuple[float, float]:
        box_top, box_left, h, w = box
        return left + (box_left + w / 2) * scale, top + (box_top + h / 2) * scale

    for column, box in zip(columns, boxes[0], strict=True):
        frame.text(centre(box)[0], top - 4, column, ha="center", va="bottom", fontsize=10)
    for row, row_boxes, cells in zip(rows, boxes, layout, strict=True):
        y = centre(row_boxes[0])[1]
        frame.text(left - PAD - swatch, y, row, ha="right", va="center", fontsize=10)
        if palette and row in palette:
            square = frame.box(left - PAD - 10, y - 5, 10, 10)
            fig.patches.append(
                Rectangle(square[:2], *square[2:], transform=fig.transFigure, color=palette[row])
            )
        for box, cell in zip(row_boxes, cells, strict=True):
            if cell is None:
                frame.text(*centre(box), "n/a", ha="center", va="center", fontsize=11, color="0.4")
    return fig


def image_grid_figure(
    grids: Mapping[tuple[str, str], Path],
    rows: Sequence[str],
    columns: Sequence[str],
    path: Path,
    title: str,
    *,
    palette: Palette | None = None,
) -> Path:
    """Compose saved PNG grids (rows = variants, columns = samplers or corruption kinds) into
    one labelled PNG at ``path``; a missing (row, column) shows a light "n/a" cell.

    With ``palette``, a swatch of each variant's colour sits beside its row label. Grey levels
    are rounded to ``GRID_LEVELS`` to keep the file small.
    """
    with _style():
        return save_png(draw_image_grid(grids, rows, columns, title, palette), path, GRID_LEVELS)
