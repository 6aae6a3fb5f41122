"""One image path: the same files give the same model input, and so the same probabilities, through training's
loader (in memory and streamed), `autotune predict`, `autotune serve` and `autotune.load_model(...).predict`; for
the default resize, and for a pretrained model's (bicubic, the centre cut out) that the model card records."""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import autotune
from autotune.vision.data import FileImages, FileSplit
from autotune.vision.datasets import image_folder
from use_support import served

pytest.importorskip("fastapi")

SIZE = 24  # the model's input: 3 x 24 x 24
LABELS = ["a", "b"]


class Probe(torch.nn.Module):
    """A small convolutional net with fixed random weights: its probabilities move with every pixel."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 5, stride=2)
        self.fc = torch.nn.Linear(6 * 10 * 10, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x * 2 - 1)).flatten(1)) * 4


def _save(image: Image.Image, path: Path, fmt: str, **options: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **options)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """An image folder of two classes whose files are what users have: digits scaled up to 90 x 90 (as PNG and
    JPEG), a photo turned by its EXIF orientation, 16-bit grey, RGBA, a palette GIF and a wide BMP."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    digits = np.rint(load_digits().images[:8] * (255 / 16)).astype(np.uint8)
    for i, digit in enumerate(digits):
        big = Image.fromarray(digit).resize((90, 90), Image.Resampling.NEAREST).convert("RGB")
        _save(big, root / LABELS[i % 2] / f"digit{i}.png", "PNG")
        _save(big, root / LABELS[i % 2] / f"digit{i}.jpg", "JPEG", quality=90)
    photo = Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).resize((120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; the image is to be rotated 90 degrees
    _save(photo, root / "a" / "rotated.jpg", "JPEG", exif=exif.tobytes())
    deep = np.linspace(0, 65535, 50 * 70).reshape(50, 70).astype(np.uint16)
    _save(Image.fromarray(deep), root / "b" / "grey16.png", "PNG")  # mode I;16
    rgba = np.dstack([rng.integers(0, 256, (50, 50, 3), dtype=np.uint8), np.full((50, 50), 90, np.uint8)])
    _save(Image.fromarray(rgba), root / "b" / "rgba.png", "PNG")
    _save(Image.fromarray(rng.integers(0, 256, (33, 33, 3), dtype=np.uint8)).quantize(8), root / "a" / "palette.gif",
          "GIF")
    _save(Image.fromarray(rng.integers(0, 256, (30, 100, 3), dtype=np.uint8)), root / "b" / "wide.bmp", "BMP")
    return root


@pytest.fixture(scope="module")
def files(folder) -> list[Path]:
    """The folder's files in image_folder's order: class by class, sorted."""
    return [p for label in LABELS for p in sorted((folder / label).iterdir())]


RESIZES = {"default": {}, "pretrained": {"interpolation": "bicubic", "crop_pct": 0.875}}


@pytest.fixture(scope="module", params=sorted(RESIZES))
def resize(request) -> dict:
    """image_folder's resize keys, as a model card records them (a card without any: the default)."""
    return RESIZES[request.param]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, resize) -> Path:
    folder = tmp_path_factory.mktemp("probe_model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated; exported models still use it
        torch.jit.script(Probe().eval()).save(str(folder / "model.pt"))
    card = {"name": "probe", "labels": LABELS, "input_shape": [3, SIZE, SIZE]}
    (folder / "model.json").write_text(json.dumps({**card, **({"resize": resize} if resize else {})}))
    return folder


def _probabilities(model_dir: Path, pixels: np.ndarray | torch.Tensor) -> np.ndarray:
    model = autotune.load_model(model_dir)
    return model.predict(np.asarray(pixels, dtype=np.uint8)).probabilities


@pytest.fixture(scope="module")
def trained_on(folder, files, model_dir, resize) -> np.ndarray:
    """The probabilities of the pixels training's loader makes of the folder, in memory."""
    images = image_folder(str(folder), image_size=SIZE, channels=3, **resize)
    assert not isinstance(images.x, FileImages) and len(images.x) == len(files) == 21
    return _probabilities(model_dir, images.x)


def test_the_fixture_files_are_as_users_have_them(files):
    with Image.open(next(f for f in files if f.name == "rotated.jpg")) as photo:
        assert photo.getexif()[0x0112] == 6 and photo.size == (120, 80)
    with Image.open(next(f for f in files if f.name == "grey16.png")) as deep:
        assert deep.mode.startswith("I") and np.asarray(deep).max() > 255


def test_streamed_training_batches_are_the_in_memory_pixels(folder, model_dir, trained_on, resize):
    images = image_folder(str(folder), image_size=SIZE, channels=3, memory_limit_mb=0, workers=1, **resize)
    assert isinstance(images.x, FileImages)
    pixels = torch.cat([x for x, _ in FileSplit(images.x, images.y).batches(8)])
    np.testing.assert_allclose(_probabilities(model_dir, pixels), trained_on, atol=1e-5)


def test_load_model_predicts_pil_images_and_files_as_training_sees_them(files, model_dir, trained_on):
    model = autotune.load_model(model_dir)
    opened = [Image.open(f) for f in files]
    try:
        np.testing.assert_allclose(model.predict(opened).probabilities, trained_on, atol=1e-5)
    finally:
        for image in opened:
            image.close()
    np.testing.assert_allclose(model.predict([str(f) for f in files]).probabilities, trained_on, atol=1e-5)
    np.testing.assert_allclose(model.predict(files).probabilities, trained_on, atol=1e-5)


def test_predict_gives_the_training_probabilities(files, model_dir, trained_on, cli):
    code, out, err = cli("predict", model_dir, *files, "--top-k", str(len(LABELS)))
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["file"] for row in rows] == [str(f) for f in files]
    np.testing.assert_allclose(_table(rows), trained_on, atol=1e-5)


def test_serve_gives_the_training_probabilities(files, model_dir, trained_on, tmp_path):
    rows = []
    with served(model_dir, tmp_path / "server.log") as client:
        for start in range(0, len(files), 8):
            upload = [("files", (f.name, f.read_bytes(), "application/octet-stream")) for f in files[start:start + 8]]
            response = client.post("/predict", params={"top_k": len(LABELS)}, files=upload)
            assert response.status_code == 200, response.text
            answer = response.json()
            rows += answer if isinstance(answer, list) else [answer]
    assert [row["file"] for row in rows] == [f.name for f in files]
    np.testing.assert_allclose(_table(rows), trained_on, atol=1e-5)


def test_a_second_conversion_would_be_seen(files, model_dir, trained_on):
    """The comparison can fail: the conversion load_model used before (Pillow's default bicubic resize of the whole
    image, no EXIF orientation) moves the probabilities of these files by far more than 1e-5."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = np.stack([np.asarray(Image.open(f).convert("RGB").resize((SIZE, SIZE))).transpose(2, 0, 1)
                          for f in files])
    assert np.abs(_probabilities(model_dir, other) - trained_on).max() > 1e-3


def _table(rows: list[dict]) -> np.ndarray:
    """Predict's and serve's records as an (N, classes) table of probabilities in the model's label order."""
    return np.array([[{t["label"]: t["probability"] for t in row["top_k"]}[label] for label in LABELS]
                     for row in rows])


def test_image_pixels_takes_a_path_bytes_or_an_image_alike(files):
    from autotune.vision.inference import image_pixels

    for path in files:
        from_path = image_pixels(path, (3, SIZE, SIZE))
        assert from_path.shape == (3, SIZE, SIZE) and from_path.dtype == np.uint8
        assert np.array_equal(image_pixels(path.read_bytes(), (3, SIZE, SIZE)), from_path)
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            assert np.array_equal(image_pixels(image, (3, SIZE, SIZE)), from_path)
