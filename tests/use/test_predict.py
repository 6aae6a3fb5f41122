"""`autotune predict` and the input checks it shares with serve, on the model a real tiny search exported."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import autotune
from autotune.inference import BadInput, array_batch, open_image, records, to_pixels
from use_support import digit_png, image_bytes


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_images_of_the_test_split_are_labelled_like_the_model_labels_the_arrays(searched, digits_test, tmp_path, cli):
    images, truth = digits_test
    model = autotune.load_model(searched.model_dir)
    expected = model.predict(images[:40])
    for i, image in enumerate(images[:40]):
        (tmp_path / f"{i:02d}.png").write_bytes(digit_png(image, size=8))
    code, out, err = cli("predict", searched.model_dir, tmp_path)
    assert code == 0 and err == ""
    rows = lines(out)
    assert [Path(r["file"]).name for r in rows] == [f"{i:02d}.png" for i in range(40)]
    assert [r["label"] for r in rows] == expected.labels
    assert np.mean([r["label"] == str(t) for r, t in zip(rows, truth[:40])]) > 0.8
    for row, probabilities in zip(rows, expected.probabilities):
        assert row["probability"] == pytest.approx(probabilities.max(), abs=1e-5)
        assert [t["label"] for t in row["top_k"]][0] == row["label"] and len(row["top_k"]) == 3
        assert row["top_k"][0]["probability"] >= row["top_k"][1]["probability"] >= row["top_k"][2]["probability"]


# (id, how to write the file) -> any size and mode of image is converted to the model's 8x8 grey input
KINDS = [
    ("grey-png-64", lambda im: digit_png(im, 64)),
    ("rgb-png", lambda im: digit_png(im, 32, "RGB")),
    ("rgba-png", lambda im: digit_png(im, 32, "RGBA")),
    ("palette-png", lambda im: digit_png(im, 32, "P")),
    ("one-bit-png", lambda im: digit_png(im, 16, "1")),
    ("jpeg", lambda im: digit_png(im, 64, "L", "JPEG")),
    ("rgb-jpeg", lambda im: digit_png(im, 40, "RGB", "JPEG")),
    ("bmp", lambda im: digit_png(im, 24, "RGB", "BMP")),
    ("gif", lambda im: digit_png(im, 24, "P", "GIF")),
    ("webp", lambda im: digit_png(im, 24, "RGB", "WEBP")),
    ("tiff", lambda im: digit_png(im, 24, "L", "TIFF")),
    ("sixteen-bit-png", lambda im: image_bytes(im[0].astype(np.uint16) * 257)),
    ("non-square", lambda im: image_bytes(np.repeat(im[0], 3, axis=1))),
]


@pytest.mark.parametrize("make", [k[1] for k in KINDS], ids=[k[0] for k in KINDS])
def test_any_size_and_mode_is_converted(searched, digits_test, tmp_path, cli, make):
    image = digits_test[0][0]
    path = tmp_path / "input.img"
    path.write_bytes(make(image))
    code, out, err = cli("predict", searched.model_dir, path, "--top-k", "10")
    assert code == 0, err
    (row,) = lines(out)
    assert row["file"] == str(path) and row["label"] in [str(i) for i in range(10)]
    assert len(row["top_k"]) == 10 and sum(t["probability"] for t in row["top_k"]) == pytest.approx(1, abs=1e-4)


def test_sixteen_bit_images_are_scaled_not_clipped(digits_test):
    image = digits_test[0][0]
    pixels = to_pixels(open_image(image_bytes(image[0].astype(np.uint16) * 257)), (1, 8, 8))
    assert np.array_equal(pixels, image)


def test_npy_one_image_and_batches_in_every_layout(searched, digits_test, tmp_path, cli):
    images = digits_test[0][:5]
    model = autotune.load_model(searched.model_dir)
    expected = model.predict(images).labels
    np.save(tmp_path / "a_chw.npy", images[0])
    np.save(tmp_path / "b_hw.npy", images[0, 0])
    np.save(tmp_path / "c_batch.npy", images)
    np.save(tmp_path / "d_batch_nhw.npy", images[:, 0])
    np.save(tmp_path / "e_float.npy", images.astype(np.float32) / 255)
    np.save(tmp_path / "f_hwc.npy", images[0].transpose(1, 2, 0))
    code, out, err = cli("predict", searched.model_dir, *sorted(tmp_path.glob("*.npy")), "--top-k", "2")
    assert code == 0, err
    rows = lines(out)
    assert [r["label"] for r in rows] == [expected[0]] * 2 + expected * 3 + [expected[0]]
    assert "index" not in rows[0] and [r["index"] for r in rows[2:7]] == list(range(5))
    assert all(len(r["top_k"]) == 2 for r in rows)


def test_a_folder_is_read_recursively_and_other_files_skipped(searched, digits_test, tmp_path, cli):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "one.png").write_bytes(digit_png(digits_test[0][0]))
    (tmp_path / "sub" / "two.JPG").write_bytes(digit_png(digits_test[0][1], fmt="JPEG"))
    np.save(tmp_path / "sub" / "deeper" / "three.npy", digits_test[0][2])
    (tmp_path / "notes.txt").write_text("not an image")
    code, out, _ = cli("predict", searched.model_dir, tmp_path)
    assert code == 0
    assert [Path(r["file"]).relative_to(tmp_path).as_posix() for r in lines(out)] == [
        "one.png", "sub/deeper/three.npy", "sub/two.JPG"]  # sorted paths


# (id, file name, content) of inputs predict refuses: one line each on stderr, the others still predicted
BAD_FILES = [
    ("text-as-png", "a.png", b"hello, not an image"),
    ("empty", "b.png", b""),
    ("truncated-png", "c.png", None),
    ("pickled-npy", "d.npy", None),
    ("npy-wrong-shape", "e.npy", np.zeros((5, 7), np.uint8)),
    ("npy-float-out-of-range", "f.npy", np.full((8, 8), 3.0)),
    ("npy-strings", "g.npy", np.array(["a", "b"])),
    ("npy-negative", "h.npy", np.full((8, 8), -1)),
    ("npy-nan", "i.npy", np.full((8, 8), np.nan)),
    ("missing", "missing.png", "absent"),
    ("npy-garbage", "j.npy", b"\x93NUMPY garbage"),
]


def test_bad_files_get_one_line_each_and_exit_1(searched, digits_test, tmp_path, cli):
    good = tmp_path / "good.png"
    good.write_bytes(digit_png(digits_test[0][0]))
    paths = []
    for _, name, content in BAD_FILES:
        path = tmp_path / name
        paths.append(path)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, np.ndarray):
            np.save(path, content)
        elif name == "c.png":
            path.write_bytes(digit_png(digits_test[0][0])[:50])
        elif name == "d.npy":
            np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, out, err = cli("predict", searched.model_dir, paths[0], good, *paths[1:])
    assert code == 1
    assert [Path(r["file"]).name for r in lines(out)] == ["good.png"]
    errors = err.strip().splitlines()
    assert len(errors) == len(BAD_FILES), err
    for line, path in zip(errors, paths):
        assert line.startswith(f"autotune predict: {path}: ") and "Traceback" not in line
    assert "No such file" in errors[-2]


@pytest.mark.parametrize(("argv", "words"), [
    (["MODEL_DIR_EMPTY", "x.png"], "holds no model.pt"),
    (["MODEL", "EMPTY_FOLDER"], "no images or .npy files"),
    (["MODEL", "x.png", "--top-k", "0"], "--top-k must be >= 1"),
], ids=["not-a-model", "no-inputs", "top-k-zero"])
def test_usage_errors_exit_2_with_one_line(searched, tmp_path, cli, argv, words):
    (tmp_path / "empty").mkdir()
    subs = {"MODEL_DIR_EMPTY": tmp_path / "empty", "MODEL": searched.model_dir, "EMPTY_FOLDER": tmp_path / "empty"}
    code, out, err = cli("predict", *[subs.get(a, a) for a in argv])
    assert code == 2 and out == ""
    assert words in err and len(err.strip().splitlines()) == 1


def test_top_k_is_capped_at_the_number_of_labels(searched, digits_test, tmp_path, cli):
    np.save(tmp_path / "x.npy", digits_test[0][0])
    code, out, _ = cli("predict", searched.model_dir, tmp_path / "x.npy", "--top-k", "50")
    assert code == 0 and len(lines(out)[0]["top_k"]) == 10


# (id, array, words of the refusal) for a model of input (1, 8, 8)
BAD_ARRAYS = [
    ("bool", np.zeros((8, 8), bool), "dtype bool"),
    ("int-above-255", np.full((8, 8), 256), "0..255"),
    ("float-above-1", np.full((8, 8), 1.5), "[0, 1]"),
    ("float-inf", np.full((8, 8), np.inf), "finite"),
    ("wrong-size", np.zeros((9, 9), np.uint8), "neither one image nor a batch"),
    ("wrong-channels", np.zeros((8, 8, 3), np.uint8), "neither one image nor a batch"),
    ("five-dims", np.zeros((1, 1, 1, 8, 8), np.uint8), "neither one image nor a batch"),
    ("empty-batch", np.zeros((0, 1, 8, 8), np.uint8), "neither one image nor a batch"),
    ("not-an-array", {"a": 1}, "not a .npy array"),
]


@pytest.mark.parametrize(("array", "words"), [b[1:] for b in BAD_ARRAYS], ids=[b[0] for b in BAD_ARRAYS])
def test_array_checks(array, words):
    with pytest.raises(BadInput, match=words.replace("[", r"\[").replace(".", r"\.")):
        array_batch(array, (1, 8, 8))


def test_records_are_json_ready(searched, digits_test):
    model = autotune.load_model(searched.model_dir)
    rows = records(model, digits_test[0][:2], ["a", "b"], top_k=2)
    assert json.loads(json.dumps(rows)) == rows
    assert {tuple(r) for r in rows} == {("file", "label", "probability", "top_k")}
