"""Report figures: right panels and lines, honest numbers, small deterministic PNGs."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.colors import to_rgb
from PIL import Image
from torchvision.utils import save_image

from aebench.report import figures as F

VARIANTS = ["ae", "dae", "vae", "dvae"]
GRID = {"gaussian": [0.0, 0.1, 0.3], "masking": [0.0, 0.25, 0.5], "salt_pepper": [0.0, 0.1, 0.2]}


@pytest.fixture(autouse=True)
def _no_open_figures():
    """Every test must leave no figure open: the report stage renders dozens."""
    yield
    assert plt.get_fignums() == []
    plt.close("all")


def _curves() -> pd.DataFrame:
    rows = []
    for i, variant in enumerate(VARIANTS):
        for seed in range(3):
            for kind, levels in GRID.items():
                for level in levels:
                    mse = 0.01 * (i + 1) + 0.1 * level + 0.001 * seed
                    rows.append(
                        {
                            "variant": variant,
                            "seed": seed,
                            "kind": kind,
                            "level": level,
                            "mse": mse,
                            "psnr": -10 * np.log10(mse),
                            "ssim": 1 - mse,
                            "latent_shift": level,
                            "probe_accuracy": 0.9 - level,
                        }
                    )
    return pd.DataFrame(rows)


def _history(variants=VARIANTS) -> pd.DataFrame:
    rows = []
    for variant in variants:
        vae = "vae" in variant
        for seed in range(2):
            for epoch in range(1, 6):
                loss = 100.0 / epoch + seed
                rows.append(
                    {
                        "variant": variant,
                        "seed": seed,
                        "epoch": epoch,
                        "train_loss": loss,
                        "val_loss": loss + 1,
                        # AE-family runs log a recon term too (equal to the loss), never a KL
                        "val_recon": loss - 10 if vae else loss + 1,
                        "val_kl": 10.0 if vae else np.nan,
                    }
                )
    return pd.DataFrame(rows)


def _line_colours(ax) -> set[tuple[float, ...]]:
    return {tuple(np.round(to_rgb(line.get_color()), 4)) for line in ax.get_lines()}


def _rounded(palette, names) -> set[tuple[float, ...]]:
    return {tuple(np.round(palette[n], 4)) for n in names}


# --- palette and PNG writing ---------------------------------------------------------------------


def test_palette_is_stable_distinct_and_follows_run_order():
    palette = F.variant_palette(VARIANTS)
    assert list(palette) == VARIANTS
    assert palette == F.variant_palette(VARIANTS)
    assert len(set(palette.values())) == len(VARIANTS)
    # appending a variant keeps everyone else's colour; duplicates collapse
    extended = F.variant_palette([*VARIANTS, "new", "ae"])
    assert list(extended) == [*VARIANTS, "new"]
    assert all(extended[v] == palette[v] for v in VARIANTS)
    many = F.variant_palette([f"v{i}" for i in range(14)])
    assert len(set(many.values())) == 14


def test_grey_render_is_single_channel_and_few_colours_are_exact():
    grey = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 3, axis=2)
    assert F.encode_png_image(grey).mode == "L"
    rounded = np.asarray(F.encode_png_image(grey, levels=32))
    assert len(np.unique(rounded)) <= 32 and rounded.min() == 0 and rounded.max() == 255

    few = np.zeros((8, 8, 3), np.uint8)
    few[:4] = (200, 30, 10)
    few[:, :2] = (10, 90, 250)
    image = F.encode_png_image(few)
    assert image.mode == "P"
    assert np.array_equal(np.asarray(image.convert("RGB")), few)

    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert len(F.encode_png_image(noise).getcolors(maxcolors=1024)) <= 256


def test_png_is_written_atomically_and_deterministically(tmp_path):
    paths = [F.robustness_figure(_curves(), tmp_path / name, "mse") for name in ("a.png", "b.png")]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temp left
    image = mpimg.imread(paths[0])
    assert image.shape[1] == 900 and 300 <= image.shape[0] <= 500
    assert paths[0].stat().st_size < 250_000
    with Image.open(paths[0]) as png:
        assert png.format == "PNG" and "Software" not in png.info


def test_failed_render_leaves_the_previous_file(tmp_path):
    target = F.robustness_figure(_curves(), tmp_path / "r.png")
    before = target.read_bytes()
    with pytest.raises(ValueError, match="unknown metric"):
        F.robustness_figure(_curves(), target, "accuracy")
    assert target.read_bytes() == before


# --- robustness ----------------------------------------------------------------------------------


def test_robustness_has_a_panel_per_kind_and_a_mean_line_per_variant():
    curves = _curves()
    palette = F.variant_palette(["vae", *VARIANTS])  # palette order, not data order, rules
    fig = F.draw_robustness(curves, "mse", palette)
    try:
        assert len(fig.axes) == len(GRID)
        titles = [ax.get_title() for ax in fig.axes]
        assert "σ" in titles[0] and "Masking" in titles[1] and "Salt" in titles[2]
        assert fig.axes[0].get_ylabel() == "MSE per pixel"
        for ax in fig.axes:
            assert _line_colours(ax) == _rounded(palette, VARIANTS)
            assert ax.collections, "a ±sd band per variant"
        first = fig.axes[0].get_lines()[0]  # vae: first in palette order
        expected = curves.query("kind == 'gaussian' and variant == 'vae'").groupby("level")["mse"]
        assert np.allclose(first.get_ydata(), expected.mean().to_numpy())
        assert [t.get_text() for t in fig.legends[0].get_texts()] == ["vae", "ae", "dae", "dvae"]
    finally:
        plt.close(fig)


def test_robustness_rejects_a_variant_outside_the_palette():
    with pytest.raises(ValueError, match="missing from the palette"):
        F.draw_robustness(_curves(), "ssim", F.variant_palette(["ae", "dae"]))


# --- training curves -----------------------------------------------------------------------------


def test_training_curves_show_vae_terms_for_the_vae_family_only():
    palette = F.variant_palette(VARIANTS)
    fig = F.draw_training_curves(_history(), palette)
    try:
        loss, recon, kl = fig.axes
        assert _line_colours(loss) == _rounded(palette, VARIANTS)
        styles = [line.get_linestyle() for line in loss.get_lines()]
        assert styles.count("--") == styles.count("-") == len(VARIANTS)  # train, validation
        assert [t.get_text() for t in loss.get_legend().get_texts()] == ["validation", "train"]
        assert _line_colours(recon) == _line_colours(kl) == _rounded(palette, ["vae", "dvae"])
        assert all(ax.get_ylabel() == "nats per image" for ax in fig.axes)
    finally:
        plt.close(fig)


def test_training_curves_without_a_vae_have_one_panel():
    fig = F.draw_training_curves(_history(["ae", "dae"]))
    try:
        assert len(fig.axes) == 1
    finally:
        plt.close(fig)


# --- trade-off -----------------------------------------------------------------------------------


def test_tradeoff_labels_do_not_overlap_and_missing_points_are_named():
    points = pd.DataFrame(
        {
            "variant": VARIANTS,
            "x_mean": [0.010, 0.0101, 0.0102, np.nan],  # three nearly coincident points
            "x_std": [0.001, np.nan, 0.001, 0.0],
            "y_mean": [30.0, 30.05, 29.95, 20.0],
            "y_std": [1.0, 1.0, np.nan, 0.0],
        }
    )
    fig = F.draw_tradeoff(points, "MSE per pixel", "Fréchet distance")
    try:
        (ax,) = fig.axes
        renderer = fig.canvas.get_renderer()
        labels = [t for t in ax.texts if t.get_text() in VARIANTS]
        assert [t.get_text() for t in labels] == ["ae", "dae", "vae"]
        boxes = [t.get_window_extent(renderer) for t in labels]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b)
        assert "no value: dvae" in ax.get_title() and "lower left is better" in ax.get_title()
        assert any(t.get_text() == "better" for t in ax.texts)
    finally:
        plt.close(fig)


# --- latent PCA ----------------------------------------------------------------------------------


def _two_axis_codes(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Codes whose variance lies on two known axes (variances 9 and 1) of an 8-d space."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(8, 8)))[0][:, :2]
    plane = rng.normal(size=(n, 2)) * [3.0, 1.0]
    return plane @ basis.T, np.arange(n) % 10


def test_principal_components_recover_the_variance_split():
    codes, _ = _two_axis_codes()
    projected, ratio = F.principal_components(codes)
    assert projected.shape == (len(codes), 2)
    assert ratio.sum() == pytest.approx(1.0, abs=1e-9)
    assert ratio[0] == pytest.approx(0.9, abs=0.03)
    assert np.var(projected[:, 0]) > np.var(projected[:, 1])
    _, single = F.principal_components(codes[:, :1])
    assert single == pytest.approx([1.0, 0.0])


def test_pca_titles_report_the_computed_ratio_and_share_one_legend():
    codes, labels = _two_axis_codes()
    noisy = codes + np.random.default_rng(1).normal(0, 1.0, codes.shape)
    fig = F.draw_latent_pca({"ae": (codes, labels), "vae": (noisy, labels)})
    try:
        visible = [ax for ax in fig.axes if ax.axison]
        assert len(visible) == 2
        for ax, z in zip(visible, (codes, noisy), strict=True):
            ratio = F.principal_components(z)[1]
            assert f"PC1 {ratio[0]:.0%}, PC2 {ratio[1]:.0%}" in ax.get_title()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert len(legends) == 1 and len(legends[0].get_texts()) == 10
    finally:
        plt.close(fig)


def test_pca_rejects_labels_outside_the_classes():
    codes, labels = _two_axis_codes()
    with pytest.raises(ValueError, match="labels outside"):
        F.draw_latent_pca({"ae": (codes, labels)}, n_classes=5)


# --- image grids ---------------------------------------------------------------------------------


def _checker_grid(path, n: int = 16, phase: int = 0) -> np.ndarray:
    """Save an n-image 28×28 checkerboard grid like the evaluate stage does; return the images."""
    yy, xx = np.mgrid[:28, :28]
    tile = ((yy // 2 + xx // 2 + phase) % 2).astype(np.float32)
    images = torch.tensor(np.broadcast_to(tile, (n, 1, 28, 28)).copy())
    save_image(images, path, nrow=4, padding=1)
    return images.numpy()


def test_compose_fills_missing_cells_with_light_grey():
    a = np.zeros((10, 12), np.float32)
    b = np.full((6, 8), 0.5, np.float32)
    canvas, boxes = F.compose_grids([[a, None], [None, b]], gap=2)
    assert canvas.shape == (10 + 2 + 6, 12 + 2 + 8)
    top, left, h, w = boxes[0][1]
    assert np.all(canvas[top : top + h, left : left + w] == F.NA_GREY)
    top, left, h, w = boxes[0][0]
    assert np.array_equal(canvas[top : top + h, left : left + w], a)
    assert np.all(canvas[10:12] == 1.0)  # the gap is white
    colour, _ = F.compose_grids([[np.zeros((4, 4, 3), np.float32), b]])
    assert colour.ndim == 3


def test_grid_layout_marks_missing_and_rejects_unlisted(tmp_path):
    grids = {("ae", "gmm"): tmp_path / "x.png"}
    assert F.grid_layout(grids, ["ae", "vae"], ["prior", "gmm"]) == [
        [None, tmp_path / "x.png"],
        [None, None],
    ]
    with pytest.raises(ValueError, match="unlisted"):
        F.grid_layout({("conv_ae", "gmm"): tmp_path / "x.png"}, ["ae"], ["gmm"])


def test_image_grid_is_drawn_pixel_for_pixel_with_na_cells(tmp_path):
    _checker_grid(tmp_path / "ae_gmm.png")
    _checker_grid(tmp_path / "vae_prior.png", phase=1)
    grids = {("ae", "gmm"): tmp_path / "ae_gmm.png", ("vae", "prior"): tmp_path / "vae_prior.png"}
    rows, columns = ["ae", "vae"], ["prior", "gmm"]
    source = F.read_grid(tmp_path / "ae_gmm.png")
    assert source.ndim == 2  # torchvision's three equal channels read back as grey

    fig = F.draw_image_grid(grids, rows, columns, "Samples", F.variant_palette(rows))
    assert [t.get_text() for t in fig.texts].count("n/a") == 2
    (ax,) = fig.axes
    box = ax.get_window_extent()
    canvas = ax.get_images()[0].get_array()
    path = F.save_png(fig, tmp_path / "samples.png")

    out = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    assert 700 < out.shape[1] <= 900 and out.shape[0] > 700  # 2 × 2 cells, scaled up
    top, left = out.shape[0] - round(box.y1), round(box.x0)
    region = out[top : top + canvas.shape[0], left : left + canvas.shape[1]]
    shown = ~np.isclose(canvas, F.NA_GREY)  # the "n/a" text is drawn over the grey cells
    assert np.allclose(region[shown], canvas[shown], atol=1 / 255), "one pixel per canvas pixel"
    scale = canvas.shape[1] // (2 * source.shape[1] + 6)
    assert scale >= 2  # small grids are enlarged by a whole factor to fill the width
    assert path.stat().st_size < 100_000


def test_image_grid_file_keeps_colour_only_where_there_is_colour(tmp_path):
    _checker_grid(tmp_path / "g.png")
    grids = {("ae", "gmm"): tmp_path / "g.png"}
    plain = F.image_grid_figure(grids, ["ae"], ["gmm"], tmp_path / "plain.png", "t")
    swatched = F.image_grid_figure(
        grids, ["ae"], ["gmm"], tmp_path / "sw.png", "t", palette=F.variant_palette(["ae"])
    )
    with Image.open(plain) as a, Image.open(swatched) as b:
        assert a.mode == "L" and b.mode == "P"


def test_tradeoff_axis_turns_logarithmic_when_one_variant_is_far_off():
    points = pd.DataFrame(
        {
            "variant": VARIANTS,
            "x_mean": [0.010, 0.011, 0.012, 0.013],  # 1.3x: stays linear
            "x_std": [0.001] * 4,
            "y_mean": [30.0, 32.0, 35.0, 900.0],  # 30x: logarithmic
            "y_std": [1.0] * 4,
        }
    )
    fig = F.draw_tradeoff(points, "MSE per pixel", "Fréchet distance")
    try:
        (ax,) = fig.axes
        assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "log")
        assert "log y axis" in ax.get_title()
    finally:
        plt.close(fig)


def test_a_crowded_tradeoff_plot_has_no_overlapping_labels():
    """Eighteen variants, five in a tight cluster and one in the "better" corner (the committed
    report's case: iwae, wae and iwae_protocol_vae on one spot, "better" over conv_ae): no two
    label boxes intersect, and none covers the "better" arrow's text."""
    rng = np.random.default_rng(0)
    names = [f"variant_{i}" for i in range(18)]
    x = np.concatenate([0.010 + rng.uniform(0, 1e-4, 5), rng.uniform(0.005, 0.03, 13)])
    y = np.concatenate([40 + rng.uniform(0, 0.3, 5), rng.uniform(20, 90, 13)])
    x[-1], y[-1] = 0.004, 18.0  # nearest the lower-left corner, under the "better" arrow
    points = pd.DataFrame(
        {"variant": names, "x_mean": x, "x_std": 0.0005, "y_mean": y, "y_std": 1.0}
    )
    fig = F.draw_tradeoff(points, "MSE per pixel", "Fréchet distance")
    try:
        (ax,) = fig.axes
        renderer = fig.canvas.get_renderer()
        texts = [t for t in ax.texts if t.get_text() in names or t.get_text() == "better"]
        assert len(texts) == 19
        boxes = [t.get_window_extent(renderer) for t in texts]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), (texts[i].get_text(), texts[boxes.index(b)].get_text())
    finally:
        plt.close(fig)
