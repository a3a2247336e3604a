import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aebench.data import DatasetError
from aebench.file_datasets import (
    ImageSet,
    read_image_set,
    read_npz,
    read_png_folder,
    source_digest,
    split_image_set,
)

RNG = np.random.default_rng(0)


def _pixels(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _png(path: Path, pixels: np.ndarray, mode: str | None = None) -> None:
    """H×W pixels as an L PNG, H×W×3 as RGB (or ``mode``: the image converted to it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(path)


def _folder(root: Path, classes: dict[str, int], side: int = 4, rgb: bool = False) -> dict:
    """``classes[name]`` PNGs per class folder; returns {class: [C×H×W arrays in name order]}."""
    written = {}
    for name, count in classes.items():
        written[name] = []
        for index in range(count):
            pixels = _pixels(side, side, 3) if rgb else _pixels(side, side)
            _png(root / name / f"img{index:02d}.png", pixels)
            written[name].append(pixels.transpose(2, 0, 1) if rgb else pixels[None])
    return written


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _balanced(classes: int, per_class: int, shape=(4, 4)) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(classes), per_class)
    return _pixels(len(labels), *shape), labels


# --- round trips ---------------------------------------------------------------------------------


def test_npz_grayscale_round_trips_with_a_channel_axis(tmp_path):
    images, labels = _balanced(3, 4)
    got = read_npz(_npz(tmp_path / "s.npz", images=images, labels=labels.astype(np.int16)))
    assert list(got.images) == ["all"]
    assert got.images["all"].dtype == np.uint8 and got.images["all"].shape == (12, 1, 4, 4)
    assert np.array_equal(got.images["all"][:, 0], images)
    assert got.labels["all"].dtype == np.int64 and np.array_equal(got.labels["all"], labels)
    assert got.class_names == ("0", "1", "2")


def test_npz_rgb_and_own_splits_are_kept_as_given(tmp_path):
    arrays = {}
    for split, per_class in (("train", 5), ("val", 1), ("test", 2)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = _balanced(2, per_class, (3, 5, 6))
    got = read_npz(_npz(tmp_path / "s.npz", **arrays))
    assert list(got.images) == ["train", "val", "test"]
    for split in got.images:
        assert np.array_equal(got.images[split], arrays[f"{split}_images"])
        assert np.array_equal(got.labels[split], arrays[f"{split}_labels"])
    splits = split_image_set(got, split_seed=0, val_fraction=0.5, test_fraction=0.5, source="s")
    for split in ("train", "val", "test"):
        assert np.array_equal(splits.images[split], arrays[f"{split}_images"])
        assert np.array_equal(splits.labels[split], arrays[f"{split}_labels"])
    assert splits.source == "s"


def test_png_folder_round_trips_in_sorted_class_and_file_order(tmp_path):
    written = _folder(tmp_path / "set", {"zebra": 2, "ant": 3, "Bee": 1})  # created unsorted
    got = read_png_folder(tmp_path / "set")
    assert got.class_names == ("Bee", "ant", "zebra")  # code-point order: upper case first
    expected = written["Bee"] + written["ant"] + written["zebra"]
    assert got.images["all"].dtype == np.uint8 and got.images["all"].shape == (6, 1, 4, 4)
    assert np.array_equal(got.images["all"], np.stack(expected))
    assert got.labels["all"].tolist() == [0, 1, 1, 1, 2, 2]
    assert got.labels["all"].dtype == np.int64


def test_png_folder_rgb_gives_three_channels(tmp_path):
    written = _folder(tmp_path / "set", {"a": 2, "b": 2}, side=5, rgb=True)
    got = read_image_set(tmp_path / "set", "png_folder")
    assert got.images["all"].shape == (4, 3, 5, 5)
    assert np.array_equal(got.images["all"], np.stack(written["a"] + written["b"]))


def test_png_folder_own_splits_and_hidden_files_ignored(tmp_path):
    root = tmp_path / "set"
    train = _folder(root / "train", {"cat": 2, "dog": 3})
    test = _folder(root / "test", {"cat": 1, "dog": 1})
    (root / ".DS_Store").write_bytes(b"\0junk")
    (root / "train" / "cat" / "._img00.png").write_bytes(b"AppleDouble")
    (root / ".git").mkdir()
    got = read_png_folder(root)
    assert list(got.images) == ["train", "test"] and got.class_names == ("cat", "dog")
    assert np.array_equal(got.images["train"], np.stack(train["cat"] + train["dog"]))
    assert np.array_equal(got.images["test"], np.stack(test["cat"] + test["dog"]))
    assert got.labels["test"].tolist() == [0, 1]


# --- splitting -----------------------------------------------------------------------------------


def test_unsplit_set_is_split_stratified_and_seeded(tmp_path):
    images, labels = _balanced(3, 20)
    image_set = read_npz(_npz(tmp_path / "s.npz", images=images, labels=labels))
    first = split_image_set(image_set, 7, 0.1, 0.2, "s")
    again = split_image_set(image_set, 7, 0.1, 0.2, "s")
    other = split_image_set(image_set, 8, 0.1, 0.2, "s")
    for split, per_class in (("train", 14), ("val", 2), ("test", 4)):
        assert np.array_equal(first.images[split], again.images[split])
        assert np.array_equal(first.labels[split], again.labels[split])
        assert np.bincount(first.labels[split]).tolist() == [per_class] * 3
        assert first.images[split].dtype == np.uint8 and first.labels[split].dtype == np.int64
    assert not np.array_equal(first.images["test"], other.images["test"])
    # every image lands in exactly one split, with its own label
    pairs = {(im.tobytes(), int(y)) for im, y in zip(image_set.images["all"], labels, strict=True)}
    split_pairs = [
        (im.tobytes(), int(y))
        for s in ("train", "val", "test")
        for im, y in zip(first.images[s], first.labels[s], strict=True)
    ]
    assert len(split_pairs) == 60 and set(split_pairs) == pairs


def test_missing_val_is_drawn_stratified_from_train(tmp_path):
    root = tmp_path / "set"
    _folder(root / "train", {"a": 10, "b": 20})
    _folder(root / "test", {"a": 1, "b": 2})
    image_set = read_png_folder(root)
    splits = split_image_set(image_set, 0, 0.1, 0.5, "set")  # test_fraction unused here
    again = split_image_set(image_set, 0, 0.1, 0.5, "set")
    assert np.bincount(splits.labels["val"]).tolist() == [1, 2]
    assert np.bincount(splits.labels["train"]).tolist() == [9, 18]
    assert np.array_equal(splits.images["val"], again.images["val"])
    assert np.array_equal(splits.images["test"], image_set.images["test"])
    drawn = {im.tobytes() for s in ("train", "val") for im in splits.images[s]}
    assert drawn == {im.tobytes() for im in image_set.images["train"]}


# --- change detection ----------------------------------------------------------------------------


def test_source_digest_follows_the_pixels(tmp_path):
    root = tmp_path / "set"
    _folder(root, {"a": 2, "b": 2})
    before = source_digest(root)
    assert source_digest(root) == before
    (root / ".DS_Store").write_bytes(b"finder")  # ignored by the reader, so by the digest too
    assert source_digest(root) == before
    pixels = np.asarray(Image.open(root / "b" / "img01.png")).copy()
    pixels[0, 0] ^= 1
    _png(root / "b" / "img01.png", pixels)
    assert source_digest(root) != before
    (root / "b" / "img01.png").rename(root / "b" / "img99.png")  # a name is part of the set
    changed = source_digest(root)
    (root / "b" / "img99.png").rename(root / "b" / "img01.png")
    assert changed != source_digest(root)

    images, labels = _balanced(2, 3)
    path = _npz(tmp_path / "s.npz", images=images, labels=labels)
    digest = source_digest(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == source_digest(path)
    images[1, 2, 3] ^= 1
    _npz(path, images=images, labels=labels)
    assert source_digest(path) != digest


# --- refusals: npz -------------------------------------------------------------------------------

IMAGES, LABELS = _balanced(2, 3)


@pytest.mark.parametrize(
    ("arrays", "fragments"),
    [
        ({"labels": LABELS}, ["has 'labels' but no 'images'", "allowed: 'images' and 'labels'"]),
        ({"other": LABELS}, ["unexpected arrays ['other']", "'train_images'/'train_labels'"]),
        ({"images": IMAGES}, ["has 'images' but no 'labels'"]),
        (
            {"train_images": IMAGES, "test_images": IMAGES, "test_labels": LABELS},
            ["has 'train_images' but no 'train_labels'"],
        ),
        ({"train_images": IMAGES, "train_labels": LABELS}, ["no 'test' split"]),
        (
            {"images": IMAGES, "labels": LABELS, "train_images": IMAGES},
            ["mixes ['images', 'labels'] with own splits ['train_images']"],
        ),
        ({"images": IMAGES, "labels": LABELS, "val_image": IMAGES}, ["unexpected arrays"]),
        (
            {"images": IMAGES.astype(np.float32), "labels": LABELS},
            ["'images' in", "dtype float32", "allowed: uint8"],
        ),
        ({"images": IMAGES[:, 0], "labels": LABELS}, ["'images' in", "(ndim 2)", "N×C×H×W"]),
        (
            {"images": np.zeros((6, 4, 4, 3), np.uint8), "labels": LABELS},
            ["'images' in", "4 channels", "channels-last", "C 1 (grayscale) or 3 (RGB)"],
        ),
        (
            {"images": IMAGES, "labels": LABELS.astype(float)},
            ["'labels' in", "dtype float64", "1-D integer"],
        ),
        ({"images": IMAGES, "labels": LABELS[:, None]}, ["'labels' in", "shape (6, 1)"]),
        ({"images": IMAGES, "labels": LABELS[:5]}, ["'labels' in", "5 labels for 6 images"]),
        ({"images": IMAGES, "labels": LABELS - 1}, ["negative label -1"]),
        ({"images": IMAGES, "labels": np.zeros(6, int)}, ["1 class(es) [0]", "at least 2"]),
        ({"images": IMAGES, "labels": LABELS * 2}, ["up to 2 but none of [1]", "without gaps"]),
        (
            {
                "train_images": IMAGES,
                "train_labels": LABELS,
                "test_images": _pixels(2, 5, 5),
                "test_labels": np.array([0, 1]),
            },
            ["'test_images' in", "1×5×5 (C×H×W)", "'train_images' holds 1×4×4", "one channel"],
        ),
        (
            {
                "train_images": IMAGES,
                "train_labels": LABELS,
                "test_images": IMAGES[:2],
                "test_labels": np.array([0, 0]),
            },
            ["'test_labels' in", "lacks classes [1]", "every split holds"],
        ),
    ],
)
def test_malformed_npz_is_refused(tmp_path, arrays, fragments):
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError) as caught:
        read_npz(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_or_unreadable_npz_is_refused(tmp_path):
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(DatasetError, match=r"empty\.npz holds no image arrays \(found \[\]\)"):
        read_npz(tmp_path / "empty.npz")
    with pytest.raises(DatasetError, match=r"absent\.npz not found.*allowed: an \.npz file"):
        read_npz(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DatasetError, match=r"junk\.npz could not be read as an \.npz archive"):
        read_npz(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", IMAGES)
    with pytest.raises(DatasetError, match=r"one\.npy is a single \.npy array"):
        read_npz(tmp_path / "one.npy")
    with pytest.raises(DatasetError, match=r"gone not found"):
        source_digest(tmp_path / "gone")


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="unknown image set format 'tiff'; allowed: npz, png"):
        read_image_set(tmp_path, "tiff")


# --- refusals: png folder ------------------------------------------------------------------------


def _refused(root: Path, *fragments: str) -> None:
    with pytest.raises(DatasetError) as caught:
        read_png_folder(root)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message


def test_missing_folder_and_too_few_classes_are_refused(tmp_path):
    _refused(tmp_path / "absent", "absent not found", "allowed: one sub-folder")
    _folder(tmp_path / "one", {"only": 3})
    _refused(tmp_path / "one", "1 class folder(s) ['only']", "at least 2 class sub-folders")


def test_empty_class_folder_is_refused(tmp_path):
    _folder(tmp_path / "set", {"a": 2})
    (tmp_path / "set" / "b").mkdir()
    (tmp_path / "set" / "b" / ".DS_Store").write_bytes(b"x")  # hidden: still empty
    _refused(tmp_path / "set", f"class folder {tmp_path / 'set' / 'b'} holds no images")


def test_non_png_files_are_refused(tmp_path):
    root = tmp_path / "set"
    _folder(root, {"a": 2, "b": 2})
    (root / "a" / "notes.txt").write_text("x")
    _refused(root, str(root / "a" / "notes.txt"), "not a .png file", ".png files only")
    (root / "a" / "notes.txt").unlink()
    (root / "a" / "fake.png").write_bytes(b"GIF89a not really")
    _refused(root, str(root / "a" / "fake.png"), "could not be read as a PNG")
    (root / "a" / "fake.png").unlink()
    Image.fromarray(_pixels(4, 4)).save(root / "a" / "jpeg.png", format="JPEG")
    _refused(root, str(root / "a" / "jpeg.png"), "is a JPEG image named .png")
    (root / "a" / "jpeg.png").unlink()
    (root / "README.md").write_text("about")
    _refused(root, "holds files ['README.md'] beside the class folders")


@pytest.mark.parametrize("mode", ["RGBA", "P", "LA", "I;16"])
def test_other_png_modes_are_refused(tmp_path, mode):
    root = tmp_path / "set"
    _folder(root, {"a": 1, "b": 1}, rgb=True)
    _png(root / "b" / "odd.png", _pixels(4, 4, 3), mode=mode if mode != "I;16" else None)
    if mode == "I;16":
        Image.fromarray(_pixels(4, 4).astype(np.uint16) * 257).save(root / "b" / "odd.png")
    with pytest.raises(DatasetError) as caught:
        read_png_folder(root)
    message = str(caught.value)
    assert str(root / "b" / "odd.png") in message and "PNG mode '" in message
    assert "allowed: L (8-bit grayscale) or RGB (8-bit RGB)" in message


def test_mixed_sizes_and_channel_counts_are_refused(tmp_path):
    root = tmp_path / "set"
    _folder(root, {"a": 2, "b": 1})
    _png(root / "b" / "wide.png", _pixels(4, 6))
    _refused(
        root,
        f"{root / 'b' / 'wide.png'} is 6×4 (width × height) L",
        f"but {root / 'a' / 'img00.png'} is 4×4 (width × height) L",
        "one size and one mode",
    )
    _png(root / "b" / "wide.png", _pixels(4, 4, 3))
    _refused(root, "wide.png is 4×4 (width × height) RGB", "img00.png is 4×4 (width × height) L")


def test_malformed_split_folders_are_refused(tmp_path):
    root = tmp_path / "set"
    _folder(root / "train", {"a": 2, "b": 2})
    _refused(root, "split folders ['train'] but no test/")
    _folder(root / "test", {"a": 1, "c": 1})
    _refused(root, f"{root / 'test'} has class folders ['a', 'c']", "missing: ['b']", "extra")
    (root / "test" / "c" / "img00.png").rename(root / "test" / "c" / "x.png")
    (root / "test" / "c").rename(root / "test" / "b")
    _png(root / "test" / "b" / "x.png", _pixels(5, 5))
    _refused(root, f"{root / 'test' / 'b' / 'x.png'} is 5×5", "train")
    _folder(root / "extra", {"a": 1})
    _refused(root, "split folders ['test', 'train'] and also ['extra']")


# --- refusals: splitting -------------------------------------------------------------------------


def test_too_few_images_per_class_for_a_stratified_split(tmp_path):
    root = tmp_path / "set"
    _folder(root, {"big": 10, "small": 4})
    with pytest.raises(
        DatasetError,
        match=r"class 'small' of set has 4 images; .* val_fraction 0\.1 needs at least 10 images",
    ):
        split_image_set(read_png_folder(root), 0, 0.1, 0.2, "set")
    images, labels = _balanced(2, 3)
    own = ImageSet(
        images={"train": images[:, None], "test": images[:, None]},
        labels={"train": labels, "test": labels},
        class_names=("x", "y"),
    )
    with pytest.raises(DatasetError, match=r"class 'x' of the train split of own has 3 images"):
        split_image_set(own, 0, 0.25, 0.2, "own")
    with pytest.raises(DatasetError, match=r"val_fraction 0\.6 and test_fraction 0\.5: allowed"):
        split_image_set(read_png_folder(root), 0, 0.6, 0.5, "set")


def test_a_split_without_every_class_is_refused():
    """read_* already refuse such files; split_image_set checks again for sets built in code."""
    labels = np.array([0, 0, 1, 1])
    image_set = ImageSet(
        images={s: _pixels(4, 1, 2, 2) for s in ("train", "val", "test")},
        labels={"train": labels, "val": labels, "test": np.array([0, 0, 0, 0])},
        class_names=("a", "b"),
    )
    with pytest.raises(DatasetError, match=r"the test split of s has no image of classes \['b'\]"):
        split_image_set(image_set, 0, 0.1, 0.2, "s")
    with pytest.raises(DatasetError, match=r"has splits \['train'\]; allowed: 'all' alone"):
        split_image_set(
            ImageSet({"train": labels}, {"train": labels}, ("a", "b")), 0, 0.1, 0.2, "s"
        )
