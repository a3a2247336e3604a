"""A researcher's own image set, read from files into the project's storage format.

Two formats are accepted:

``npz`` — one ``.npz`` file (``numpy.savez``; no pickled objects) holding either

* ``images`` and ``labels``: the whole set, split by aebench into train/val/test (stratified,
  seeded by ``data.split_seed``, sized by ``data.val_fraction`` and ``data.test_fraction``); or
* its own splits: ``train_images``/``train_labels`` and ``test_images``/``test_labels``, and
  optionally ``val_images``/``val_labels``. Without the val arrays, val is drawn from train
  (stratified, seeded, ``data.val_fraction`` of the train images); train and test are kept as
  given.

A split made by aebench needs at least ceil(1 / f) images in every class, f being the smallest of
the shares it cuts (val, test and what remains for train), so that each split gets every class.

``*_images`` arrays are uint8, N×H×W (grayscale) or N×C×H×W with C = 1 (grayscale) or 3 (RGB).
``*_labels`` arrays are integer, 1-D, one per image, numbering the classes 0, 1, …, K-1 with
every class present in every split (K ≥ 2). No other arrays are allowed. Class names are the
label numbers as text.

``png_folder`` — a folder with one sub-folder per class holding that class's ``.png`` files
(the whole set, split by aebench as above); or a folder with ``train/`` and ``test/`` (and
optionally ``val/``) sub-folders, each holding the same class sub-folders (its own splits, kept
as given; val drawn from train when absent). A class's label is the position of its sub-folder's
name among the class names sorted by Python's string order (code points: ``"B" < "a"``,
``"10" < "2"``); the names are kept. Files are read in sorted name order, so the arrays do not
depend on the file system. PNGs are 8-bit grayscale (mode ``L``, C = 1) or 8-bit RGB (mode
``RGB``, C = 3), all of one size and one mode; palette, RGBA, 16-bit and other modes are refused
(convert them first). Names starting with ``.`` (``.DS_Store``, ``._x.png``, ``.git/``) are
ignored everywhere, also by :func:`source_digest`; any other file that is not a ``.png`` is
refused. The split folder names ``train``, ``val`` and ``test`` cannot be class names.

Every problem is one :class:`aebench.data.DatasetError` naming what is wrong, where (file, folder
or array) and what is allowed, so a malformed set stops the fetch stage before it writes anything.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aebench.data import SPLITS, Splits, stratified_three_way, train_test_split
from aebench.errors import DatasetError
from aebench.spec import DataConfig

FORMATS = ("npz", "png_folder")
PNG_MODES = {"L": "8-bit grayscale", "RGB": "8-bit RGB"}
NPZ_WHOLE = ("images", "labels")
NPZ_SPLIT = tuple(f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels"))
WHOLE = "all"  # the key of an unsplit set's arrays


_NPZ_ALLOWED = (
    "allowed: 'images' and 'labels' (split by aebench), or 'train_images'/'train_labels' and "
    "'test_images'/'test_labels' with optional 'val_images'/'val_labels' (own splits)"
)
_IMAGES_ALLOWED = "allowed: uint8 N×H×W (grayscale) or N×C×H×W with C 1 (grayscale) or 3 (RGB)"
_PNG_ALLOWED = (
    "allowed: one sub-folder of .png files per class, or train/ and test/ (optional val/) "
    "folders each holding the same class sub-folders"
)


@dataclass(frozen=True)
class ImageSet:
    """A set as read, before splitting: uint8 N×C×H×W images and int64 labels per split
    ("all" when the files carry no splits), and the class names in label order."""

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    class_names: tuple[str, ...]


def read_image_set(path: Path, format: str) -> ImageSet:
    """Read ``path`` as ``format`` (one of :data:`FORMATS`)."""
    readers = {"npz": read_npz, "png_folder": read_png_folder}
    if format not in readers:
        raise DatasetError(f"unknown image set format {format!r}; allowed: {', '.join(FORMATS)}")
    return readers[format](Path(path))


# --- npz -----------------------------------------------------------------------------------------


def read_npz(path: Path) -> ImageSet:
    """Read an ``.npz`` set (see the module docstring), checking every array before use."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} not found (or not a file); allowed: an .npz file")
    arrays = _load_npz(path)
    names = set(arrays)
    unknown = sorted(names - set(NPZ_WHOLE) - set(NPZ_SPLIT))
    if unknown:
        raise DatasetError(f"{path} holds unexpected arrays {unknown}; {_NPZ_ALLOWED}")
    whole, split = names & set(NPZ_WHOLE), names & set(NPZ_SPLIT)
    if whole and split:
        raise DatasetError(
            f"{path} mixes {sorted(whole)} with own splits {sorted(split)}; {_NPZ_ALLOWED}"
        )
    if whole:
        keys = {WHOLE: NPZ_WHOLE}
    elif split:
        keys = {
            s: (f"{s}_images", f"{s}_labels")
            for s in SPLITS
            if f"{s}_images" in names or f"{s}_labels" in names
        }
    else:
        raise DatasetError(f"{path} holds no image arrays (found {sorted(names)}); {_NPZ_ALLOWED}")
    for images_key, labels_key in keys.values():
        for present, absent in ((images_key, labels_key), (labels_key, images_key)):
            if present in names and absent not in names:
                raise DatasetError(f"{path} has {present!r} but no {absent!r}; {_NPZ_ALLOWED}")
    for needed in ("train", "test") if split else ():
        if needed not in keys:
            raise DatasetError(
                f"{path} has own splits {sorted(keys)} but no {needed!r} split "
                f"({needed}_images/{needed}_labels); {_NPZ_ALLOWED}"
            )

    images, labels = {}, {}
    for split, (images_key, labels_key) in keys.items():
        where = f"{images_key!r} in {path}"
        images[split] = _checked_npz_images(arrays[images_key], where)
        labels[split] = _checked_npz_labels(
            arrays[labels_key], f"{labels_key!r} in {path}", len(images[split]), images_key
        )
    _require_one_image_shape(images, keys, path)
    count = _npz_class_count(labels, keys, path)
    return ImageSet(images, labels, tuple(str(c) for c in range(count)))


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, loaded without pickle; any unreadable file is refused."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetError(
            f"{path} could not be read as an .npz archive without pickle ({err}); allowed: a "
            "file written by numpy.savez or numpy.savez_compressed holding plain numeric arrays"
        ) from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path} is a single .npy array, not an .npz archive; {_NPZ_ALLOWED}")
    with archive:
        try:
            return {name: archive[name] for name in archive.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise DatasetError(
                f"{path}: an array could not be read without pickle ({err}); allowed: plain "
                "numeric arrays (numpy.savez of uint8 images and integer labels)"
            ) from err


def _checked_npz_images(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype != np.uint8:
        raise DatasetError(
            f"{where} has dtype {array.dtype}; {_IMAGES_ALLOWED} "
            "(scale to 0..255 and convert, e.g. np.rint(x * 255).astype(np.uint8))"
        )
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[1] not in (1, 3):
        hint = (
            " (it looks channels-last, N×H×W×C: use array.transpose(0, 3, 1, 2))"
            if array.shape[3] in (1, 3)
            else ""
        )
        raise DatasetError(
            f"{where} has shape {array.shape}, so {array.shape[1]} channels{hint}; "
            f"{_IMAGES_ALLOWED}"
        )
    elif array.ndim != 4:
        raise DatasetError(
            f"{where} has shape {array.shape} (ndim {array.ndim}); {_IMAGES_ALLOWED}"
        )
    if 0 in array.shape:
        raise DatasetError(f"{where} has shape {array.shape}, which holds no pixels")
    return np.ascontiguousarray(array)


def _checked_npz_labels(array: np.ndarray, where: str, count: int, images_key: str) -> np.ndarray:
    allowed = f"allowed: a 1-D integer array with one label per image ({count} in {images_key!r})"
    if not np.issubdtype(array.dtype, np.integer):
        raise DatasetError(f"{where} has dtype {array.dtype}; {allowed}")
    if array.ndim != 1:
        raise DatasetError(f"{where} has shape {array.shape} (ndim {array.ndim}); {allowed}")
    if len(array) != count:
        raise DatasetError(f"{where} holds {len(array)} labels for {count} images; {allowed}")
    if count and array.min() < 0:
        raise DatasetError(
            f"{where} holds the negative label {int(array.min())}; "
            "allowed: classes numbered 0, 1, …, K-1"
        )
    return array.astype(np.int64)


def _require_one_image_shape(
    images: dict[str, np.ndarray], keys: dict[str, tuple[str, str]], path: Path
) -> None:
    """Every split must share C×H×W: the models are built for one image shape."""
    first = next(iter(images))
    for split, array in images.items():
        if array.shape[1:] != images[first].shape[1:]:
            raise DatasetError(
                f"{keys[split][0]!r} in {path} holds {_shape(array.shape[1:])} images but "
                f"{keys[first][0]!r} holds {_shape(images[first].shape[1:])}; allowed: one "
                "channel count and one height × width across all splits"
            )


def _npz_class_count(
    labels: dict[str, np.ndarray], keys: dict[str, tuple[str, str]], path: Path
) -> int:
    """K, checking the labels of every split are exactly 0..K-1 (the metrics count classes as
    1 + the largest label, and a class missing from a split would skew them)."""
    reference = "train" if "train" in labels else WHOLE
    present = np.unique(labels[reference])
    count = int(present.max()) + 1 if len(present) else 0
    where = f"{keys[reference][1]!r} in {path}"
    if count < 2 or len(present) < 2:
        raise DatasetError(
            f"{where} holds {len(present)} class(es) {present.tolist()}; "
            "allowed: at least 2 classes, numbered 0, 1, …, K-1"
        )
    if len(present) != count:
        missing = sorted(set(range(count)) - set(present.tolist()))
        raise DatasetError(
            f"{where} holds labels up to {count - 1} but none of {missing}; allowed: classes "
            f"numbered 0, 1, …, K-1 without gaps (renumber them, e.g. np.unique(labels, "
            "return_inverse=True)[1])"
        )
    for split, array in labels.items():
        have = set(np.unique(array).tolist())
        missing = sorted(set(range(count)) - have)
        extra = sorted(have - set(range(count)))
        if missing or extra:
            problem = f"lacks classes {missing}" if missing else f"holds unknown classes {extra}"
            raise DatasetError(
                f"{keys[split][1]!r} in {path} {problem}; allowed: every split holds at least one "
                f"image of each of the {count} classes 0..{count - 1} of {where}"
            )
    return count


# --- png folder ----------------------------------------------------------------------------------


def read_png_folder(path: Path) -> ImageSet:
    """Read a folder of class sub-folders of PNGs (see the module docstring)."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path} not found (or not a folder); {_PNG_ALLOWED}")
    stray = [p.name for p in _visible(path) if not p.is_dir()]
    if stray:
        raise DatasetError(f"{path} holds files {stray} beside the class folders; {_PNG_ALLOWED}")
    folders = [p.name for p in _visible(path)]
    split_folders = [name for name in folders if name in SPLITS]
    if split_folders:
        others = sorted(set(folders) - set(SPLITS))
        if others:
            raise DatasetError(
                f"{path} holds split folders {split_folders} and also {others}; {_PNG_ALLOWED}"
            )
        for needed in ("train", "test"):
            if needed not in folders:
                raise DatasetError(
                    f"{path} has split folders {split_folders} but no {needed}/; {_PNG_ALLOWED}"
                )
        roots = {split: path / split for split in SPLITS if split in folders}
    else:
        roots = {WHOLE: path}

    class_names: tuple[str, ...] | None = None
    files: dict[str, list[list[Path]]] = {}
    for split, root in roots.items():
        stray = [p.name for p in _visible(root) if not p.is_dir()]
        if stray:
            raise DatasetError(
                f"{root} holds files {stray} beside the class folders; {_PNG_ALLOWED}"
            )
        names = tuple(p.name for p in _visible(root))
        if class_names is None:
            class_names, first_root = names, root
            if len(names) < 2:
                raise DatasetError(
                    f"{root} holds {len(names)} class folder(s) {list(names)}; allowed: at least "
                    "2 class sub-folders"
                )
        elif names != class_names:
            missing = sorted(set(class_names) - set(names))
            extra = sorted(set(names) - set(class_names))
            raise DatasetError(
                f"{root} has class folders {list(names)} but {first_root} has "
                f"{list(class_names)} (missing: {missing}, extra: {extra}); allowed: the same "
                "class sub-folders in every split folder"
            )
        files[split] = [_png_files(root / name) for name in names]

    assert class_names is not None
    images, labels = {}, {}
    first: tuple[Path, tuple[int, ...], str] | None = None
    for split, by_class in files.items():
        arrays, split_labels = [], []
        for label, class_files in enumerate(by_class):
            for file in class_files:
                pixels, mode = _read_png(file)
                if first is None:
                    first = (file, pixels.shape, mode)
                elif (pixels.shape, mode) != first[1:]:
                    raise DatasetError(
                        f"{file} is {_describe(pixels.shape, mode)} but {first[0]} is "
                        f"{_describe(first[1], first[2])}; allowed: one size and one mode "
                        "(all L or all RGB) for every image of the set"
                    )
                arrays.append(pixels)
                split_labels.append(label)
        images[split] = np.stack(arrays)
        labels[split] = np.asarray(split_labels, dtype=np.int64)
    return ImageSet(images, labels, class_names)


def _visible(folder: Path) -> list[Path]:
    """The folder's entries in sorted name order, without hidden (dot) files and folders."""
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=_name)


def _name(path: Path) -> str:
    return path.name


def _png_files(folder: Path) -> list[Path]:
    entries = _visible(folder)
    if not entries:
        raise DatasetError(
            f"class folder {folder} holds no images; allowed: at least one .png per class folder"
        )
    for entry in entries:
        if entry.is_dir() or entry.suffix.lower() != ".png":
            kind = "a folder" if entry.is_dir() else "not a .png file"
            raise DatasetError(
                f"{entry} is {kind}; allowed in a class folder: .png files only (names starting "
                "with '.' are ignored)"
            )
    return entries


def _read_png(file: Path) -> tuple[np.ndarray, str]:
    """C×H×W uint8 pixels and the PIL mode of one 8-bit grayscale or RGB PNG."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image.load()
            kind, mode = image.format, image.mode
            pixels = np.asarray(image) if mode in PNG_MODES else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"{file} could not be read as a PNG ({err})") from err
    if kind != "PNG":
        raise DatasetError(f"{file} is a {kind} image named .png; allowed: PNG files only")
    if pixels is None:
        raise DatasetError(
            f"{file} has PNG mode {mode!r}; allowed: {_allowed_modes()} (convert it first, e.g. "
            "PIL's Image.open(f).convert('RGB').save(f))"
        )
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels, dtype=np.uint8), mode


def _allowed_modes() -> str:
    return " or ".join(f"{name} ({text})" for name, text in PNG_MODES.items())


def _describe(shape: tuple[int, ...], mode: str) -> str:
    return f"{shape[2]}×{shape[1]} (width × height) {mode}"


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(side) for side in shape) + " (C×H×W)"


# --- splitting -----------------------------------------------------------------------------------


def split_image_set(
    image_set: ImageSet, split_seed: int, val_fraction: float, test_fraction: float, source: str
) -> Splits:
    """train/val/test as stored by :func:`aebench.data.write_splits`.

    An unsplit set gets the embedded datasets' seeded stratified three-way split. Own splits are
    kept as given; a missing val is drawn stratified and seeded from train (``val_fraction`` of
    it), as for the torchvision datasets. Every split must end up with every class."""
    keys = set(image_set.images)
    if keys == {WHOLE}:
        _check_fractions(val_fraction, test_fraction)
        fractions = {
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "the train share": 1 - val_fraction - test_fraction,
        }
        _require_per_class(image_set, WHOLE, fractions, source)
        cfg = DataConfig(split_seed, val_fraction, test_fraction)
        splits = stratified_three_way(image_set.images[WHOLE], image_set.labels[WHOLE], cfg, source)
    elif {"train", "test"} <= keys <= set(SPLITS):
        images, labels = dict(image_set.images), dict(image_set.labels)
        if "val" not in keys:
            if not 0 < val_fraction < 1:
                raise DatasetError(
                    f"val_fraction {val_fraction} cannot draw val from train for {source}; "
                    "allowed: above 0 and below 1"
                )
            fractions = {"val_fraction": val_fraction, "the train share": 1 - val_fraction}
            _require_per_class(image_set, "train", fractions, source)
            images["train"], images["val"], labels["train"], labels["val"] = train_test_split(
                images["train"],
                labels["train"],
                test_size=val_fraction,
                stratify=labels["train"],
                random_state=split_seed,
            )
        splits = Splits(
            images={s: images[s] for s in SPLITS},
            labels={s: labels[s] for s in SPLITS},
            source=source,
        )
    else:
        raise DatasetError(
            f"image set of {source} has splits {sorted(keys)}; allowed: {WHOLE!r} alone, or "
            "'train' and 'test' with optional 'val'"
        )
    _require_every_class(splits, image_set.class_names, source)
    return splits


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
        raise DatasetError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction}: allowed: each above "
            "0 and together below 1"
        )


def _require_per_class(
    image_set: ImageSet, split: str, fractions: dict[str, float], source: str
) -> None:
    """Enough images in each class that every split's share of it is at least one image."""
    smallest = min(fractions, key=fractions.__getitem__)
    needed = math.ceil(1 / fractions[smallest] - 1e-9)
    counts = np.bincount(image_set.labels[split], minlength=len(image_set.class_names))
    for label, count in enumerate(counts):
        if count < needed:
            where = f"the {split} split of {source}" if split != WHOLE else source
            raise DatasetError(
                f"class {image_set.class_names[label]!r} of {where} has {count} images; a "
                f"stratified split with {smallest} {fractions[smallest]:g} needs at least "
                f"{needed} images per class so each split gets one; allowed: add images to that "
                "class, or change the fractions"
            )


def _require_every_class(splits: Splits, class_names: tuple[str, ...], source: str) -> None:
    """A rare class's share can still round to no image in a split: refuse rather than store it."""
    for split in SPLITS:
        missing = sorted(set(range(len(class_names))) - set(splits.labels[split].tolist()))
        if missing:
            names = [class_names[c] for c in missing]
            raise DatasetError(
                f"the {split} split of {source} has no image of classes {names}; allowed: more "
                "images in those classes (or other fractions), so every split holds every class"
            )


# --- change detection ----------------------------------------------------------------------------


def source_digest(path: Path) -> str:
    """sha256 of the set's files, so a pipeline sees when the user's files change.

    A file: its bytes (the same as ``sha256sum``). A folder: every visible file's relative path
    (POSIX, sorted) and bytes; hidden names, ignored by the reader, are ignored here too."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        files = [(path.name, path)]
        single = True
    elif path.is_dir():
        files = sorted(
            (file.relative_to(path).as_posix(), file)
            for file in path.rglob("*")
            if file.is_file()
            and not any(part.startswith(".") for part in file.relative_to(path).parts)
        )
        single = False
    else:
        raise DatasetError(f"{path} not found; allowed: an .npz file or a folder of PNGs")
    for relative, file in files:
        if not single:  # length-prefixed, so no two different folders feed the same bytes
            name = relative.encode()
            digest.update(len(name).to_bytes(8, "big") + name)
            digest.update(file.stat().st_size.to_bytes(8, "big"))
        with open(file, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
