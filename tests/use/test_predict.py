"""`autotune predict` and the input checks it shares with serve, on the model a real tiny search exported."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import autotune
from autotune.vision.inference import BATCH, BadInput, array_batch, open_image, predict_files, records, to_pixels
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


def test_verbose_names_the_version_that_made_the_predictions_and_stderr_stays_empty_without_it(searched, digits_test,
                                                                                            tmp_path, cli):
    """A batch job's log could not tell which version of a canonical model made its predictions (a retrain may
    promote another between two jobs); `serve` names it in every answer."""
    (tmp_path / "one.png").write_bytes(digit_png(digits_test[0][0], size=8))
    card = json.loads((Path(searched.model_dir) / "model.json").read_text())
    code, out, err = cli("predict", "-v", searched.model_dir, tmp_path / "one.png")
    assert code == 0 and len(lines(out)) == 1
    assert err == f"autotune predict: {searched.model_dir}: version {card['version']}, made {card['created']}\n"
    assert cli("predict", searched.model_dir, tmp_path / "one.png")[2] == ""


def test_output_lines_keep_text_as_written(searched, digits_test, tmp_path, cli):
    """A file (or label) named in any script is written as it is, not as \\u escapes (which a terminal shows
    as "chien \\ud83d\\udc36"); the line is JSON all the same."""
    images, _ = digits_test
    (tmp_path / "chien été 🐶.png").write_bytes(digit_png(images[0], size=8))
    code, out, err = cli("predict", searched.model_dir, tmp_path / "chien été 🐶.png")
    assert code == 0 and "chien été 🐶.png" in out and "\\u" not in out
    assert Path(lines(out)[0]["file"]).name == "chien été 🐶.png"


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file names are UTF-8")
def test_a_file_name_that_is_not_utf8_is_written_as_escapes_a_reader_maps_back(searched, digits_test, tmp_path):
    """A Latin-1 name (café.png from an old archive), where Python writes stdout with surrogateescape (the C and
    C.UTF-8 locales of most containers): its raw byte went into the line, which was then not UTF-8, so
    `subprocess.run(..., text=True)` failed on the whole output, and jq read the name as "caf\ufffd.png", which
    joins to no file. It is written as a \\udce9 escape: json.loads gives the name back, os.fsencode its bytes."""
    name = os.fsdecode(b"caf\xe9.png")
    (tmp_path / name).write_bytes(digit_png(digits_test[0][0], size=8))
    (tmp_path / "chien été.png").write_bytes(digit_png(digits_test[0][1], size=8))
    done = subprocess.run([sys.executable, "-m", "autotune", "predict", str(searched.model_dir), str(tmp_path)],
                          capture_output=True, env={**os.environ, "LC_ALL": "C.UTF-8"}, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode("utf-8")  # every line is UTF-8 text
    assert "chien été.png" in out and "\\udce9" in out  # escaped: the byte, and only it
    files = {os.fsencode(row["file"]) for row in lines(out)}
    assert files == {os.fsencode(tmp_path / name), os.fsencode(tmp_path / "chien été.png")}


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


def test_a_large_npy_is_predicted_and_printed_a_batch_at_a_time(searched, digits_test, tmp_path, monkeypatch):
    """A .npy batch went to the model whole: its every image as float32 at once (a 78 MB array of 100,000 MNIST
    images took `autotune predict` from 955 MB to 1,585 MB), and no line came out until the last image was
    predicted. Now BATCH images at a time, each record out before the next batch is converted."""
    n = 2 * BATCH + 5
    images = np.resize(digits_test[0], (n, *digits_test[0].shape[1:]))
    np.save(tmp_path / "many.npy", images)
    model = autotune.load_model(searched.model_dir)
    given, predict = [], model.predict
    monkeypatch.setattr(model, "predict", lambda x, **options: given.append(len(x)) or predict(x, **options))
    out = predict_files(model, [tmp_path / "many.npy"])
    first = next(out)
    assert given == [BATCH]
    rows = [first, *out]
    assert given == [BATCH, BATCH, 5]
    assert [r["index"] for r in rows] == list(range(n)) and {r["file"] for r in rows} == {str(tmp_path / "many.npy")}
    assert [r["label"] for r in rows] == predict(images).labels


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
    ("a-table", "rows.csv", b"age,smoker\n61,yes\n"),
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
    assert "No such file" in errors[-3]
    assert errors[-1].endswith("rows.csv: a table (.csv): this model is an image classifier, which reads images and "
                               ".npy arrays; a table's rows are for a model of the tabular recipe")


def test_a_dash_reads_one_image_from_standard_input(searched, digits_test, tmp_path, cli, monkeypatch):
    """`cat seven.png | autotune predict MODEL -`, as Unix tools read `-`: it was "-: No such file or directory"."""
    png = digit_png(digits_test[0][3])
    (tmp_path / "same.png").write_bytes(png)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(png)))
    code, out, err = cli("predict", searched.model_dir, "-", tmp_path / "same.png")
    assert (code, err) == (0, "")
    piped, named = lines(out)
    assert piped["file"] == "-" and {**piped, "file": named["file"]} == named


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_an_output_that_cannot_be_written_is_one_line_and_exit_2(searched, digits_test, tmp_path):
    """stdout on a full disk: one line that says so and how many lines were written, exit 2 (1 says that some
    inputs were bad and every other one was predicted). It was a traceback of OSError, and exit 1."""
    np.save(tmp_path / "batch.npy", digits_test[0][:5])
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "autotune", "predict", str(searched.model_dir),
                               str(tmp_path / "batch.npy")], stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["autotune predict: error: cannot write the predictions to the standard output: "
                                        "No space left on device; 0 lines were written before it, the others were not"]


@pytest.mark.parametrize(("argv", "words"), [
    (["MODEL_DIR_EMPTY", "x.png"], "holds no model.json: not an exported autotune model directory"),
    (["CARD_ONLY", "x.png"], "card_only holds no model.pt: its model card is there but not the model"),
    (["MODEL", "EMPTY_FOLDER"], "no images or .npy files"),
    (["MODEL", "x.png", "--top-k", "0"], "--top-k must be >= 1"),
    (["MODEL", "x.png", "--keep", "id"], "the predict() of recipe 'image_classification' takes no keep; drop --keep"),
], ids=["not-a-model", "no-model-pt", "no-inputs", "top-k-zero", "keep-for-images"])
def test_usage_errors_exit_2_with_one_line(searched, tmp_path, cli, argv, words):
    (tmp_path / "empty").mkdir()
    (tmp_path / "card_only").mkdir()
    (tmp_path / "card_only" / "model.json").write_bytes((searched.model_dir / "model.json").read_bytes())
    subs = {"MODEL_DIR_EMPTY": tmp_path / "empty", "MODEL": searched.model_dir, "EMPTY_FOLDER": tmp_path / "empty",
            "CARD_ONLY": tmp_path / "card_only"}
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


def test_a_refused_array_is_named_by_its_shape_as_given_and_16_bit_pixels_get_a_fix():
    """A (16, 16) array to an RGB model was named (1, 16, 16); uint16 pixels were refused with no way out."""
    with pytest.raises(BadInput, match=r"array of shape \(16, 16\) is neither one image nor a batch"):
        array_batch(np.zeros((16, 16), np.uint8), (3, 16, 16))
    with pytest.raises(BadInput, match=r"got 0\.\.62316; 16-bit pixels: pass \(array / 257\)\.round\(\)"):
        array_batch(np.array([[0, 62316]], np.uint16), (1, 1, 2))
    with pytest.raises(BadInput, match=r"got -1\.\.0; scale them to uint8 0\.\.255"):
        array_batch(np.array([[-1, 0]]), (1, 1, 2))


def test_the_python_predictor_reads_arrays_as_predict_reads_npy_files(searched, digits_test):
    """Integers 0..255 of any dtype (numpy or torch) are pixels as uint8 ones are; floats outside [0, 1] and
    integers outside 0..255 are refused, not divided by 1 and predicted with confidence; no images, no
    predictions."""
    import torch

    from autotune.errors import UserError

    images = digits_test[0][:20]
    model = autotune.load_model(searched.model_dir)
    expected = model.predict(images)
    for same in (images.astype(np.int64), torch.from_numpy(images.astype(np.int32)), images / 255.0,
                 torch.from_numpy(images.astype(np.float32) / 255)):
        got = model.predict(same)
        assert got.labels == expected.labels and np.allclose(got.probabilities, expected.probabilities, atol=1e-5)
    for bad, words in ((images.astype(np.float32), r"float pixels must be finite and lie in \[0, 1\]"),
                       (images.astype(np.int64) * 2, "integer pixels must lie in 0..255"),
                       (np.zeros((3, 9, 9), np.uint8), "neither one image nor a batch")):
        with pytest.raises(UserError, match=words):
            model.predict(bad)
    for none in ([], np.zeros((0, 1, 8, 8), np.uint8)):
        empty = model.predict(none)
        assert empty.labels == [] and empty.probabilities.shape == (0, len(model.labels))


def test_records_are_json_ready(searched, digits_test):
    model = autotune.load_model(searched.model_dir)
    rows = records(model, digits_test[0][:2], ["a", "b"], top_k=2)
    assert json.loads(json.dumps(rows)) == rows
    assert {tuple(r) for r in rows} == {("file", "label", "probability", "top_k")}


# ------------------------------------------------------------------------------- the exported directory alone
ALONE = """
import json, sys
from autotune.cli import main

code = main(["predict", *sys.argv[1:]])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "optuna", "recipes")
                or m.startswith(("autotune.recipes.", "autotune.api", "autotune.engine")))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def test_predict_needs_only_the_exported_directory(searched, digits_test, tmp_path, cli):
    """A copy of the model directory, elsewhere, in a fresh process: the same predictions, and neither Ray,
    Optuna, the API nor the engine is imported; of the recipes, only the model's own (its predict() reads the
    inputs)."""
    alone = tmp_path / "elsewhere" / "model"
    shutil.copytree(searched.model_dir, alone)  # the files, not the link into models/.tiny.versions
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i, image in enumerate(digits_test[0][:12]):
        (inputs / f"{i:02d}.png").write_bytes(digit_png(image, size=24, mode="RGB"))
    np.save(inputs / "batch.npy", digits_test[0][12:20])
    done = subprocess.run([sys.executable, "-c", ALONE, str(alone), str(inputs)], cwd=alone.parent,
                          capture_output=True, text=True, timeout=300)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": ["autotune.recipes.image_classification"]}, done.stderr[-3000:]
    code, out, _ = cli("predict", searched.model_dir, inputs)
    assert code == 0 and lines(done.stdout) == lines(out) and len(lines(out)) == 20


# ------------------------------------------------------------------------------------------ a 3-channel model
class ChannelMeans(torch.nn.Module):
    """A stand-in RGB model: the logit of class c is (10x) the mean of input channel c."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) * 10


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory) -> Path:
    """An exported-model directory of a 3 x 8 x 8 model with the labels red, green, blue."""
    folder = tmp_path_factory.mktemp("rgb_model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated; exported models still use it
        torch.jit.script(ChannelMeans()).save(str(folder / "model.pt"))
    (folder / "model.json").write_text(json.dumps({"name": "rgb", "labels": ["red", "green", "blue"],
                                                   "input_shape": [3, 8, 8]}))
    return folder


def coloured(rgb: tuple[int, int, int], size: int = 20) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (size, size, 1))


def palette_png(rgb: tuple[int, int, int]) -> bytes:
    image = Image.fromarray(coloured(rgb)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert image.mode == "P"
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# (id, file bytes, expected label) -> an RGB model reads each mode as RGB (alpha dropped, palette looked up)
RGB_INPUTS = [
    ("rgb-red", image_bytes(coloured((230, 20, 10))), "red"),
    ("rgb-green-jpeg", image_bytes(coloured((10, 220, 30)), fmt="JPEG"), "green"),
    ("rgba-blue-half-transparent", image_bytes(np.dstack([coloured((0, 10, 240)), np.full((20, 20), 128, np.uint8)])),
     "blue"),
    ("palette-green", palette_png((20, 200, 40)), "green"),
    ("palette-blue-gif", image_bytes(coloured((30, 30, 200)), "P", "GIF"), "blue"),
]


@pytest.mark.parametrize(("data", "label"), [r[1:] for r in RGB_INPUTS], ids=[r[0] for r in RGB_INPUTS])
def test_an_rgb_model_predicts_colour_images_of_every_mode(rgb_model, tmp_path, cli, data, label):
    (tmp_path / "input.img").write_bytes(data)
    code, out, err = cli("predict", rgb_model, tmp_path / "input.img")
    assert code == 0, err
    (row,) = lines(out)
    assert row["label"] == label and row["probability"] > 0.9


def test_an_rgb_model_sees_a_grey_image_as_three_equal_channels(rgb_model, tmp_path, cli):
    (tmp_path / "grey.png").write_bytes(image_bytes(np.full((30, 12), 140, np.uint8)))  # mode L, not square
    code, out, err = cli("predict", rgb_model, tmp_path / "grey.png")
    assert code == 0, err
    (row,) = lines(out)
    assert [t["probability"] for t in row["top_k"]] == pytest.approx([1 / 3] * 3, abs=1e-5)


def test_rgb_pixels_keep_each_channel_in_place():
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    expected = rgb.transpose(2, 0, 1)
    assert np.array_equal(to_pixels(open_image(image_bytes(rgb)), (3, 8, 8)), expected)
    rgba = np.dstack([rgb, np.full((8, 8), 7, np.uint8)])
    assert np.array_equal(to_pixels(open_image(image_bytes(rgba)), (3, 8, 8)), expected)  # alpha dropped
    grey = rgb[..., 0]
    assert np.array_equal(to_pixels(open_image(image_bytes(grey)), (3, 8, 8)), np.stack([grey] * 3))
    palette = Image.fromarray(rgb).quantize(16)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    looked_up = np.asarray(palette.convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(to_pixels(open_image(buffer.getvalue()), (3, 8, 8)), looked_up)
    assert to_pixels(open_image(image_bytes(rgb)), (3, 4, 6)).shape == (3, 4, 6)  # resized to the input size


def test_a_load_while_an_export_moves_the_link_reads_one_version(searched, tmp_path):
    """The canonical model is a link that an export moves: a load reads the card and the weights of one version,
    never the card of the next with the weights of the one before (a version without model.pt makes that mix
    detectable: its card with the other's weights would load)."""
    from autotune.engine.export import _point
    from autotune.errors import UserError

    versions = {}
    for name in ("a", "b"):
        versions[name] = tmp_path / ".model.versions" / name
        shutil.copytree(Path(os.path.realpath(searched.model_dir)), versions[name])
        card = json.loads((versions[name] / "model.json").read_text())
        (versions[name] / "model.json").write_text(json.dumps({**card, "version": name}))
    (versions["b"] / "model.pt").unlink()
    link = tmp_path / "model"
    _point(link, versions["a"])
    stop = threading.Event()

    def move_the_link() -> None:
        while not stop.is_set():
            for name in ("b", "a"):
                _point(link, versions[name])

    mover = threading.Thread(target=move_the_link)
    mover.start()
    loaded, refused, deadline = [], 0, time.monotonic() + 3
    try:
        while time.monotonic() < deadline:
            try:
                loaded.append(autotune.load_model(link).card["version"])
            except UserError:  # version b, which has no weights
                refused += 1
    finally:
        stop.set()
        mover.join()
    assert loaded and refused, (len(loaded), refused)  # both versions were read
    assert set(loaded) == {"a"}, f"{loaded.count('b')} of {len(loaded)} loads mixed b's card with a's weights"


def test_a_camera_photo_of_any_size_training_takes_is_predicted(rgb_model, tmp_path, cli, monkeypatch):
    """A 5472x3648 photo (over serve's 4096 x 4096 pixels) and one over Pillow's bomb limit (made tiny here: a
    108 MP photo's case) are predicted by `autotune predict` and by the Python predictor, as training reads them."""
    Image.new("RGB", (5472, 3648), (220, 20, 10)).save(tmp_path / "big.jpg", quality=50)
    Image.fromarray(coloured((10, 220, 30))).save(tmp_path / "green.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    code, out, err = cli("predict", rgb_model, tmp_path / "big.jpg", tmp_path / "green.png")
    assert code == 0 and err == "" and [r["label"] for r in lines(out)] == ["red", "green"]
    predicted = autotune.load_model(rgb_model).predict([str(tmp_path / "big.jpg"), tmp_path / "green.png"])
    assert predicted.labels == ["red", "green"] and Image.MAX_IMAGE_PIXELS == 50


def test_a_folder_from_a_mac_lists_as_training_does_and_a_broken_link_is_named_once(rgb_model, tmp_path, cli):
    photos = tmp_path / "photos"
    (photos / "@eaDir" / "red.jpg").mkdir(parents=True)
    (photos / "__MACOSX").mkdir()
    (photos / "album.jpg").mkdir()  # a folder named like an image
    Image.fromarray(coloured((230, 20, 10))).save(photos / "red.jpg")
    Image.fromarray(coloured((230, 20, 10))).save(photos / "@eaDir" / "red.jpg" / "SYNOPHOTO_THUMB_S.jpg")
    (photos / "._red.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (photos / ".DS_Store.jpg").write_bytes(b"Bud1")
    (photos / "__MACOSX" / "._red.jpg").write_bytes(b"\x00\x05\x16\x07")
    os.symlink(tmp_path / "nowhere.jpg", photos / "gone.jpg")
    code, out, err = cli("predict", rgb_model, photos)
    assert code == 1 and [Path(r["file"]).name for r in lines(out)] == ["red.jpg"]
    assert err.strip().splitlines() == [f"autotune predict: {photos / 'gone.jpg'}: broken link (to "
                                        f"{tmp_path / 'nowhere.jpg'}, which does not exist)"]


@pytest.mark.parametrize("custom", ["gone", "failing"])
def test_a_shipped_recipe_s_model_predicts_without_its_space_s_custom_file(searched, digits_test, tmp_path, caplog,
                                                                           custom):
    """A model copied to another machine, or whose training code was edited since: its card names the space's
    custom file (a model class, a dataset), which the TorchScript model.pt does not need. load_model, predict and
    serve refused it ("custom file ... does not exist"; "failed to import"): a warning now. A `.py` recipe's model
    may need its custom file: still an error."""
    import logging

    from autotune import recipes
    from autotune.errors import UserError

    copy = tmp_path / "copy"
    shutil.copytree(Path(searched.model_dir).resolve(), copy)
    code = tmp_path / "custom.py"
    if custom == "failing":
        code.write_text("raise RuntimeError('half-edited')\n")
    card = json.loads((copy / "model.json").read_text())
    (copy / "model.json").write_text(json.dumps({**card, "custom": str(code)}))
    images, _ = digits_test
    with caplog.at_level(logging.WARNING, logger="autotune"):
        labels = autotune.load_model(copy).predict(images[:20]).labels
    assert labels == autotune.load_model(searched.model_dir).predict(images[:20]).labels
    assert "the model's custom file is not imported" in caplog.text
    with pytest.raises(UserError, match="custom file"):
        recipes.of_card({**card, "custom": str(code), "recipe": str(tmp_path / "mine.py")}, custom_needed=False)
