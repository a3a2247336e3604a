"""The one on-disk format every dataset is stored in (the loaders are in aebench.datasets).

``data/<name>/`` holds ``<split>_images.npy`` (uint8, N×C×H×W) and ``<split>_labels.npy`` (int64)
for the splits train/val/test, plus ``manifest.json`` with shapes, class counts, the source and the
sha256 of each file. Loading checks every file against the manifest, so a stale or tampered array
is refused instead of silently benchmarked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aebench.errors import DatasetError
from aebench.io import atomic_dir, sha256_file
from aebench.spec import DataConfig

if TYPE_CHECKING:
    import torch

SPLITS = ("train", "val", "test")


def train_test_split(*arrays, **options):
    """scikit-learn's stratified split, imported on first use: only the fetch stage and a
    data-size point split, and the import costs every other stage about half a second."""
    from sklearn.model_selection import train_test_split as split

    return split(*arrays, **options)


@dataclass(frozen=True)
class Splits:
    """uint8 images (N×C×H×W) and int64 labels for each split, as numpy arrays."""

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    source: str


def stratified_three_way(
    images: np.ndarray, labels: np.ndarray, cfg: DataConfig, source: str
) -> Splits:
    """Seeded train/val/test split that keeps every class's share in every split."""
    rest_x, test_x, rest_y, test_y = train_test_split(
        images, labels, test_size=cfg.test_fraction, stratify=labels, random_state=cfg.split_seed
    )
    val_share = cfg.val_fraction / (1 - cfg.test_fraction)
    train_x, val_x, train_y, val_y = train_test_split(
        rest_x, rest_y, test_size=val_share, stratify=rest_y, random_state=cfg.split_seed
    )
    return Splits(
        images={"train": train_x, "val": val_x, "test": test_x},
        labels={"train": train_y, "val": val_y, "test": test_y},
        source=source,
    )


# --- storage -------------------------------------------------------------------------------------


def write_splits(splits: Splits, out_dir: Path, name: str) -> dict:
    """Write the arrays and manifest.json; the directory appears only once complete."""
    manifest: dict = {"name": name, "source": splits.source, "splits": {}, "files": {}}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            images, labels = splits.images[split], splits.labels[split]
            for kind, array in (("images", images), ("labels", labels)):
                file_name = f"{split}_{kind}.npy"
                np.save(tmp / file_name, array, allow_pickle=False)
                manifest["files"][file_name] = sha256_file(tmp / file_name)
            classes, counts = np.unique(labels, return_counts=True)
            manifest["splits"][split] = {
                "shape": list(images.shape),
                "class_counts": {str(c): int(n) for c, n in zip(classes, counts, strict=True)},
            }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(data_dir: Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise DatasetError(f"{path} not found: run the fetch stage for this dataset first")
    return json.loads(path.read_text())


def load_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and int64 labels of one split, verified against manifest.json."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    arrays = []
    for kind in ("images", "labels"):
        file_name = f"{split}_{kind}.npy"
        path = data_dir / file_name
        expected = manifest["files"].get(file_name)
        if not path.is_file() or sha256_file(path) != expected:
            raise DatasetError(
                f"{path} does not match the sha256 in {data_dir / 'manifest.json'}; "
                "the file was changed or is missing: re-run the fetch stage"
            )
        arrays.append(np.load(path, allow_pickle=False))
    return arrays[0], arrays[1]


def training_subset(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` training images keeping every class's share (a variant's ``train_images``).

    The draw depends on ``seed`` (data.split_seed) only, never on the training seed: every seed
    and every variant of a data-size point trains on the same images, and a smaller subset is
    not nested in a larger one (each is its own stratified draw)."""
    total = len(labels)
    classes = len(np.unique(labels))
    # a stratified split leaves at least one image of each class on each side
    low, high = classes, total - classes
    if not low <= count <= high:
        raise DatasetError(
            f"train_images: {count} is not allowed here; the training split has {total} images "
            f"in {classes} classes, so allowed: {low} to {high} (leave it unset for all of them)"
        )
    kept, _, kept_labels, _ = train_test_split(
        images, labels, train_size=count, stratify=labels, random_state=seed
    )
    missing = classes - len(np.unique(kept_labels))
    if missing:  # a rare class's share rounds to 0 images
        raise DatasetError(
            f"train_images: {count} images leave {missing} of the {classes} classes out of the "
            "stratified subset; allowed: a count large enough to keep one image of every class"
        )
    return kept, kept_labels


def to_float(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 N×C×H×W -> float32 tensor in [0, 1] on ``device``."""
    import torch

    return torch.from_numpy(images).to(device=device, dtype=torch.float32).div_(255.0)
