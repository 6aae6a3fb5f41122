"""An image folder as a user's photos are: large photos, a truncated JPEG, nested and thumbnail folders, hidden
files copied from a Mac, broken links, JPEGs named .jfif, photos in formats autotune does not read."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autotune.vision.data import FileSplit, load
from autotune.vision.datasets import image_folder
from autotune.vision.inference import BadInput, open_image

STREAMED = {"memory_limit_mb": 0, "workers": 0}


@pytest.fixture(autouse=True)
def warnings_logged(monkeypatch, tmp_path):
    """autotune's log reaches caplog; its cache folder is in tmp_path."""
    monkeypatch.setattr(logging.getLogger("autotune"), "propagate", True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def photo(path: Path, value: int = 0, size: int = 12, fmt: str = "JPEG") -> Path:
    """A tiny photo at `path` (its folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(value).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    """Two classes of 8 JPEGs each, no two alike (copies are a warning)."""
    for offset, label in enumerate(("cat", "dog")):
        for i in range(8):
            photo(tmp_path / "photos" / label / f"{label}_{i:02d}.jpg", value=i + 8 * offset)
    return tmp_path / "photos"


def truncated(path: Path) -> Path:
    """A JPEG whose header is whole and whose data is cut."""
    whole = photo(path, size=64).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def skipped_warning(caplog) -> str:
    [message] = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()
                 and r.levelno == logging.WARNING]
    return message


@pytest.mark.parametrize("where", ["in memory", "streamed", "streamed without cache"])
def test_a_photo_over_pillow_s_bomb_limit_is_read_and_serve_still_refuses_it(root, monkeypatch, where):
    """Local files take any size Pillow can decode (its limit made tiny here: a 108 MP photo's case); the bytes
    serve gets keep the limit, refused as too large, and Pillow's limit is as it was."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    options = {"in memory": {}, "streamed": STREAMED, "streamed without cache": {**STREAMED, "cache": False}}[where]
    images = image_folder(str(root), image_size=4, **options)
    assert images.skipped == 0 and len(images.y) == 16
    with pytest.raises(BadInput, match="image too large") as refused:
        open_image((root / "cat" / "cat_00.jpg").read_bytes())
    assert refused.value.status == 413 and Image.MAX_IMAGE_PIXELS == 50


def test_a_photo_over_serve_s_pixel_limit_is_called_too_large(root):
    with pytest.raises(BadInput, match="too large: over the limit of 100 pixels"):
        open_image((root / "cat" / "cat_00.jpg").read_bytes(), max_pixels=100)


def test_a_streamed_folder_skips_a_truncated_jpeg_at_load_and_keeps_the_split_of_the_others(root, caplog):
    splits = {}
    for case in ("without", "with"):
        if case == "with":
            truncated(root / "cat" / "huge_cut.jpg")
        caplog.clear()
        data = load("image_folder", str(root), val_fraction=0.25, test_fraction=0.25, image_size=4, **STREAMED)
        assert isinstance(data.train, FileSplit) and data.skipped == (case == "with")
        splits[case] = [sorted(Path(f).name for f in split.images.files) for split in (data.train, data.val, data.test)]
        for split in (data.train, data.val, data.test):  # every file left in decodes: no trial fails on one
            assert sum(len(x) for x, _ in split.batches(4)) == len(split)
    assert splits["with"] == splits["without"]
    assert "skipped 1 of 17 image files" in skipped_warning(caplog) and "cat/huge_cut.jpg (OSError)" in \
        skipped_warning(caplog)


@pytest.mark.parametrize("options", [{}, STREAMED], ids=["in memory", "streamed"])
def test_an_empty_file_a_broken_link_and_a_folder_named_like_an_image(root, caplog, options):
    (root / "cat" / "empty.jpg").write_bytes(b"")
    os.symlink(root / "nowhere.jpg", root / "dog" / "gone.jpg")
    (root / "dog" / "album.jpg").mkdir()
    images = image_folder(str(root), image_size=4, **options)
    assert images.skipped == 2 and len(images.y) == 16
    assert skipped_warning(caplog).endswith(
        "that cannot be read: cat/empty.jpg (empty file), dog/gone.jpg (broken link); remove or repair them to "
        "silence this warning")


def test_the_warning_names_three_then_counts_and_the_debug_log_lists_all(root, caplog):
    for i in range(5):
        (root / "dog" / f"bad_{i}.png").write_bytes(b"not an image")
    with caplog.at_level(logging.DEBUG, logger="autotune"):
        image_folder(str(root), image_size=4)
    message = skipped_warning(caplog)
    assert "dog/bad_2.png (UnidentifiedImageError) and 2 more; remove or repair" in message and "bad_3" not in message
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG and "skipped" in r.getMessage()]
    assert len(debug) == 5 and all("UnidentifiedImageError: cannot identify image file" in d for d in debug)


def test_nested_folders_count_as_their_class_with_a_warning_and_thumbnail_folders_are_skipped(root, caplog):
    photo(root / "cat" / "kittens" / "k.jpg")
    photo(root / "dog" / "@eaDir" / "dog_00.jpg" / "SYNOPHOTO_THUMB_S.jpg")
    photo(root / "__MACOSX" / "cat" / "c.jpg")
    photo(root / ".trash" / "x.jpg")
    images = image_folder(str(root), image_size=4)
    assert images.labels == ["cat", "dog"] and len(images.y) == 17 and "cat/kittens/k.jpg" in images.keys
    [nested] = [r.getMessage() for r in caplog.records if "sub-folders" in r.getMessage()]
    assert "class folder cat in" in nested and "(cat/kittens/k.jpg is of class cat)" in nested
    assert "dog" not in nested.split(";")[0]
    assert f"point data.root at the folder that holds them, e.g. {root / 'cat'}" in nested


def test_many_nested_class_folders_are_named_a_few_then_counted(tmp_path, caplog):
    for label in "abcde":
        photo(tmp_path / label / "sub" / "1.jpg")
    image_folder(str(tmp_path), image_size=4)
    [nested] = [r.getMessage() for r in caplog.records if "sub-folders" in r.getMessage()]
    assert "class folders a, b, c and 2 more in" in nested


def test_hidden_files_are_not_images(root, caplog):
    (root / "cat" / "._cat_00.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / "dog" / ".DS_Store.jpg").write_bytes(b"Bud1")
    images = image_folder(str(root), image_size=4)
    assert images.skipped == 0 and len(images.y) == 16 and not caplog.records


def test_jfif_and_jpe_are_jpegs_and_other_photo_formats_get_one_warning(root, caplog):
    photo(root / "cat" / "a.jfif")
    photo(root / "dog" / "b.JPE")
    for name in ("cat/1.heic", "cat/2.HEIC", "dog/3.heic", "dog/4.dng"):
        (root / name).write_bytes(b"not decoded here")
    images = image_folder(str(root), image_size=4)
    assert len(images.y) == 18 and {"cat/a.jfif", "dog/b.JPE"} <= set(images.keys)
    [other] = [r.getMessage() for r in caplog.records if "convert them" in r.getMessage()]
    assert "formats it does not read (1 .dng, 3 .heic;" in other and "convert them to JPEG or PNG" in other
