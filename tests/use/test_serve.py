"""`autotune serve`: a real uvicorn server on loopback, a real HTTP client, well-formed and malformed requests."""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import shutil
import struct
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import autotune
from autotune.serve import PUBLIC_CARD
from autotune.vision.inference import open_image, records, to_pixels
from autotune.engine.export import _point
from use_support import FOLLOWED_WITHIN, digit_png, image_bytes, posted_then_gone, served, until, version_of

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

MAX_BYTES = 50_000  # small limits, so that the over-limit requests stay small
MAX_FILES = 4
MAX_PIXELS = 1_000_000


@pytest.fixture(scope="module")
def server(searched, tmp_path_factory):
    """`autotune serve` in a subprocess on 127.0.0.1 and a free port; yields an httpx client for it."""
    with served(searched.model_dir, tmp_path_factory.mktemp("serve") / "server.log",
                "--max-upload-mb", str(MAX_BYTES / 2**20), "--max-files", str(MAX_FILES),
                "--max-pixels", str(MAX_PIXELS)) as client:
        yield client


@pytest.fixture(scope="module")
def model(searched):
    return autotune.load_model(searched.model_dir)


def expected(model, data: bytes, name: str, top_k: int = 3) -> dict:
    """What the server must answer for one upload: the same conversion and prediction, in-process."""
    return records(model, [to_pixels(open_image(data), model.input_shape)], [name], top_k)[0]


def test_health_and_model_card(server, searched):
    health = server.get("/health").json()
    card = server.get("/model").json()
    assert health["status"] == "ok" and health["model"] == "tiny" and health["labels"] == 10
    whole = json.loads((searched.model_dir / "model.json").read_text())
    assert card == {key: whole[key] for key in PUBLIC_CARD if key in whole}  # `--full-card` serves `whole`
    assert card["labels"] == [str(i) for i in range(10)] and card["input_shape"] == [1, 8, 8]
    assert card["test_metrics"]["test_accuracy"] > 0 and card["version"] == whole["version"]
    assert whole["trial_id"] == searched.result.best_trial_id and whole["top_trials"] and whole["run_dir"]


def test_one_upload_gets_one_prediction(server, model, digits_test):
    images, truth = digits_test
    answers = []
    for image in images[:10]:
        data = digit_png(image, 48)
        response = server.post("/predict", files={"file": ("digit.png", data, "image/png")})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer == expected(model, data, "digit.png")
        answers.append(answer["label"])
    assert np.mean([a == str(t) for a, t in zip(answers, truth[:10])]) >= 0.7


def test_a_batch_gets_a_list_in_order(server, model, digits_test):
    uploads = [("files", (f"{i}.png", digit_png(digits_test[0][i], 8), "image/png")) for i in range(MAX_FILES)]
    response = server.post("/predict?top_k=5", files=uploads)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [a["file"] for a in answer] == [f"{i}.png" for i in range(MAX_FILES)]
    assert [a["label"] for a in answer] == model.predict(digits_test[0][:MAX_FILES]).labels
    assert all(len(a["top_k"]) == 5 for a in answer)
    one = server.post("/predict", files=[("files", ("x.png", digit_png(digits_test[0][0]), "image/png"))]).json()
    assert isinstance(one, list) and len(one) == 1


def test_jpeg_and_octet_stream_uploads_are_accepted(server, model, digits_test):
    data = digit_png(digits_test[0][3], 64, "RGB", "JPEG")
    for content_type in ("image/jpeg", "application/octet-stream"):
        response = server.post("/predict", files={"file": ("d.jpg", data, content_type)})
        assert response.json() == expected(model, data, "d.jpg")


# ------------------------------------------------------------------------------------------ malformed requests
def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    data = bytearray(image_bytes(np.zeros((1, 1), np.uint8)))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    return buffer.getvalue()


def chunks(total: int, size: int = 16_384):
    """A body sent chunked, without a Content-Length."""
    yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\r\n"
    for _ in range(total // size):
        yield b"\0" * size


def multipart(body: bytes, boundary: str = "b") -> dict:
    return {"content": body, "headers": {"content-type": f"multipart/form-data; boundary={boundary}"}}


def upload(data: bytes, content_type: str = "image/png", field: str = "file", name: str = "x.png") -> dict:
    return {"files": {field: (name, data, content_type)}}


PNG = image_bytes(np.full((16, 16), 128, np.uint8))
NOISE = np.random.default_rng(0).integers(0, 256, (16, 16)).astype(np.uint8)  # compresses badly: long data
JPEG = image_bytes(NOISE, fmt="JPEG")

# (id, method, path, httpx arguments, expected status, words of the JSON detail)
MALFORMED = [
    ("get-predict", "GET", "/predict", {}, 405, "Method Not Allowed"),
    ("put-model", "PUT", "/model", {}, 405, "Method Not Allowed"),
    ("unknown-path", "POST", "/predictions", upload(PNG), 404, "Not Found"),
    ("no-body", "POST", "/predict", {}, 415, "multipart/form-data"),
    ("json-body", "POST", "/predict", {"json": {"file": "x.png"}}, 415, "application/json"),
    ("urlencoded-form", "POST", "/predict", {"data": {"file": "x.png"}}, 415, "x-www-form-urlencoded"),
    ("raw-png-body", "POST", "/predict", {"content": PNG, "headers": {"content-type": "image/png"}}, 415,
     "multipart/form-data"),
    ("text-field", "POST", "/predict", {"data": {"file": "x.png"}, "files": {"files": ("x.png", PNG)}}, 400,
     "holds text"),
    ("wrong-field-name", "POST", "/predict", upload(PNG, field="image"), 400, "unexpected field 'image'"),
    ("no-file", "POST", "/predict", multipart(b"--b--\r\n"), 400, "no image uploaded"),
    ("empty-file", "POST", "/predict", upload(b""), 400, "empty file"),
    ("text-content-type", "POST", "/predict", upload(b"hello", "text/plain", name="x.txt"), 415, "text/plain"),
    ("svg-content-type", "POST", "/predict", upload(b"<svg/>", "image/svg+xml"), 415, "image/svg+xml"),
    ("text-as-png", "POST", "/predict", upload(b"hello, not an image"), 415, "not an image"),
    ("zip-as-octet-stream", "POST", "/predict", upload(zip_bytes(), "application/octet-stream"), 415,
     "not an image"),
    ("ppm-format", "POST", "/predict", upload(image_bytes(np.zeros((8, 8), np.uint8), fmt="PPM")), 415,
     "not an image"),
    ("truncated-png", "POST", "/predict", upload(image_bytes(NOISE)[:200]), 422, "cannot decode"),
    ("truncated-jpeg", "POST", "/predict", upload(JPEG[: len(JPEG) // 2], "image/jpeg"), 422, "cannot decode"),
    ("file-over-limit", "POST", "/predict", upload(b"\x89PNG" + b"\0" * MAX_BYTES), 413, "over the limit"),
    ("body-over-limit", "POST", "/predict", upload(b"\0" * (MAX_FILES + 1) * MAX_BYTES), 413, "over the limit"),
    ("chunked-body-over-limit", "POST", "/predict",
     {"content": chunks((MAX_FILES + 2) * MAX_BYTES), "headers": {"content-type": "multipart/form-data; boundary=b"}},
     413, "over the limit"),
    ("too-many-files", "POST", "/predict",
     {"files": [("files", (f"{i}.png", PNG, "image/png")) for i in range(MAX_FILES + 1)]}, 400, "Too many files"),
    ("file-field-twice", "POST", "/predict", {"files": [("file", ("a.png", PNG)), ("file", ("b.png", PNG))]}, 400,
     "exactly one image"),
    ("file-and-files", "POST", "/predict", {"files": [("file", ("a.png", PNG)), ("files", ("b.png", PNG))]}, 400,
     "exactly one image"),
    ("no-boundary", "POST", "/predict", {"content": b"abc", "headers": {"content-type": "multipart/form-data"}},
     400, "boundary"),
    ("garbage-multipart", "POST", "/predict", multipart(b"this is not multipart at all"), 400, "multipart"),
    ("too-many-pixels", "POST", "/predict", upload(image_bytes(np.zeros((1100, 1000), np.uint8))), 413,
     "over the limit of 1000000 pixels"),
    ("bomb-header", "POST", "/predict", upload(png_claiming(100_000, 100_000)), 413, "pixels"),
    ("top-k-zero", "POST", "/predict?top_k=0", upload(PNG), 422, "greater than or equal to 1"),
    ("top-k-text", "POST", "/predict?top_k=many", upload(PNG), 422, "integer"),
]


def send(client, method: str, path: str, arguments: dict):
    content = arguments.get("content")
    if content is not None and not isinstance(content, bytes):  # a generator is used up: make a fresh one
        arguments = {**arguments, "content": chunks((MAX_FILES + 2) * MAX_BYTES)}
    return client.request(method, path, **arguments)


@pytest.mark.parametrize(("method", "path", "arguments", "status", "words"), [m[1:] for m in MALFORMED],
                         ids=[m[0] for m in MALFORMED])
def test_malformed_request_gets_a_4xx_json_error(server, method, path, arguments, status, words):
    response = send(server, method, path, arguments)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words in detail  # one text, as docs/using-the-model.md says


def test_a_bad_top_k_is_one_text_naming_the_parameter_and_its_range(tmp_path):
    """`curl -F file=@seven.png '.../predict?top_k=0'`: {"detail": one text}, not FastAPI's list of pydantic
    errors (a model `autotune train --out` exports, served in process: no Ray)."""
    from starlette.testclient import TestClient

    import autotune.cli
    import autotune.serve

    out = tmp_path / "digits"
    with contextlib.redirect_stdout(io.StringIO()):
        assert autotune.cli.main(["train", str(Path(__file__).parents[2] / "search_spaces" / "digits.yaml"),
                                  "--set", "model.arch=mlp", "--set", "model.width=8", "--set", "train.epochs=1",
                                  "--out", str(out)]) == 0
    client = TestClient(autotune.serve.create_app(out))
    for query, wrong in [("top_k=0", "Input should be greater than or equal to 1 (got '0')"),
                         ("top_k=many", "Input should be a valid integer"),
                         ("top_k=1001", "Input should be less than or equal to 1000 (got '1001')")]:
        response = client.post(f"/predict?{query}", **upload(PNG))
        assert response.status_code == 422, query
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail.startswith(f"query parameter top_k: {wrong}"), detail
        assert detail.endswith("; allowed: a whole number >= 1 and <= 1000")


def test_a_body_over_the_limit_names_the_option_that_raises_it():
    """A 413 said "over the limit of N bytes" and not how to raise it."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.testclient import TestClient

    from autotune.serve import read_body

    app = FastAPI()

    async def echo(request) -> JSONResponse:
        return JSONResponse({"bytes": len(await read_body(request, 10))})

    app.router.add_route("/echo", echo, methods=["POST"])  # a Starlette route: `request` needs no annotation
    client = TestClient(app)
    assert client.post("/echo", content=b"x" * 10).json() == {"bytes": 10}
    for body in (b"x" * 11, iter([b"x" * 6, b"x" * 6])):  # by its Content-Length, read past the limit
        response = client.post("/echo", content=body)
        detail = response.json()["detail"]
        assert response.status_code == 413 and "over the limit of 10 bytes" in detail, detail
        assert "`autotune serve --max-upload-mb MB` raises it" in detail, detail


def test_still_serving_correctly_after_every_malformed_request(server, model, digits_test):
    assert len(MALFORMED) >= 20
    for name, method, path, arguments, status, _ in MALFORMED:
        assert send(server, method, path, arguments).status_code == status, name
    data = digit_png(digits_test[0][5], 32)
    response = server.post("/predict", files={"file": ("five.png", data, "image/png")})
    assert response.status_code == 200 and response.json() == expected(model, data, "five.png")
    assert server.get("/health").json()["status"] == "ok"


# ------------------------------------------------------------------------------------------------ in-process
def test_uploads_are_parsed_in_memory_never_spooled_to_disk():
    from starlette.datastructures import Headers

    from autotune.vision.serving import InMemoryParser

    data = b"\0" * (3 * 2**20)  # larger than Starlette's 1 MB spooling threshold
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--b--\r\n")

    async def stream():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    async def parse():
        parser = InMemoryParser(Headers({"content-type": "multipart/form-data; boundary=b"}), stream(),
                                max_files=1, max_fields=1, max_part_size=1024)
        return await parser.parse()

    upload = asyncio.run(parse())["file"]
    assert upload.size == len(data)
    assert isinstance(upload.file._file, io.BytesIO)  # SpooledTemporaryFile still in memory: no file on disk


def test_a_missing_serve_extra_says_what_to_install(searched, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # `import fastapi` now raises ImportError
    monkeypatch.delitem(sys.modules, "autotune.serve", raising=False)
    code, _, err = cli("serve", searched.model_dir)
    assert code == 2 and 'pip install "autotune[serve]"' in err and "fastapi" in err


@pytest.mark.parametrize("option", ["--max-files=0", "--max-upload-mb=0", "--max-pixels=-1"])
def test_limits_must_be_positive(searched, cli, option):
    code, _, err = cli("serve", searched.model_dir, option)
    assert code == 2 and "must be > 0" in err


def test_a_tabular_limit_is_refused_for_an_image_model(searched, cli):
    code, out, err = cli("serve", searched.model_dir, "--max-rows", "5")
    assert code == 2 and "serving" not in out and len(err.strip().splitlines()) == 1
    assert err.strip().endswith("--max-rows does not apply to the model in "
                                f"{searched.model_dir}: the serve() of recipe 'image_classification' takes no "
                                "max_rows; drop --max-rows")


def test_serving_a_folder_that_is_not_a_model_fails_before_listening(tmp_path, cli):
    code, out, err = cli("serve", tmp_path)
    assert code == 2 and "holds no model.json" in err and "serving" not in out


def test_health_answers_while_a_batch_is_being_decoded(searched, digits_test, monkeypatch):
    """Decoding is held up until /health has answered: were it on the event loop, /health would wait for it."""
    import autotune.serve as serve
    import autotune.vision.serving as serving

    started, release = threading.Event(), threading.Event()
    released: list[bool] = []
    decode = serving.image_pixels

    def slow_decode(data: bytes, *args, **options):
        if not released:  # the first image of the batch waits for the test's go
            started.set()
            released.append(release.wait(timeout=60))
        return decode(data, *args, **options)

    monkeypatch.setattr(serving, "image_pixels", slow_decode)
    app = serve.create_app(searched.model_dir)
    uploads = [("files", (f"{i}.png", digit_png(digits_test[0][i], 64), "image/png")) for i in range(4)]

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            batch = asyncio.create_task(client.post("/predict", files=uploads))
            assert await asyncio.to_thread(started.wait, 30), "the batch never reached decoding"
            health = await asyncio.wait_for(client.get("/health"), timeout=30)  # blocked: never, until release
            release.set()
            return health, await batch

    health, batch = asyncio.run(scenario())
    assert released == [True], "/health answered only after the decoding gave up waiting"
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert batch.status_code == 200 and [a["file"] for a in batch.json()] == [f"{i}.png" for i in range(4)]


# ------------------------------------------------------------------------------ following the canonical model
def lines(log: Path, start: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(start)]


def test_a_served_canonical_model_follows_its_link_to_each_new_version(searched, model, digits_test, tmp_path):
    """v1 -> v2 (other weights: it answers one label to everything) -> v3 (damaged: v2 stays) -> v1 again."""
    from autotune.serve import FOLLOW_SECONDS

    link = tmp_path / "models" / "tiny"
    data = digit_png(digits_test[0][0], 32)
    old = expected(model, data, "d.png")
    lean = (int(old["label"]) + 1) % 10
    v1 = version_of(searched.model_dir, link, "v1")
    v2 = version_of(searched.model_dir, link, "v2", answer=lean)
    v3 = version_of(searched.model_dir, link, "v3")
    (v3 / "model.pt").write_bytes(b"not a TorchScript file")
    _point(link, v1)
    log = tmp_path / "server.log"

    def predict() -> tuple[str, dict]:
        response = server.post("/predict", files={"file": ("d.png", data, "image/png")})
        assert response.status_code == 200, response.text
        return response.headers["x-model-version"], response.json()

    with served(link, log) as server:
        assert log.read_text().startswith(f"serving {link} (version v1) on http://127.0.0.1:")
        assert predict() == ("v1", old)
        assert server.get("/nope").headers["x-model-version"] == "v1"  # every answer, an error too

        _point(link, v2)
        assert until(server, "v2").headers["x-model-version"] == "v2"
        version, answer = predict()
        assert version == "v2" and answer["label"] == str(lean) and answer["probability"] > 0.999
        assert server.get("/model").json()["version"] == server.get("/model").headers["x-model-version"] == "v2"
        assert lines(log, "serving version") == [f"serving version v2 of {link} (was v1)"]

        _point(link, v3)
        deadline = time.monotonic() + FOLLOWED_WITHIN
        while not lines(log, "cannot serve"):
            assert time.monotonic() < deadline, "the damaged version was never tried"
            assert predict()[0] == "v2"
            time.sleep(0.1)
        (failed,) = lines(log, "cannot serve")
        assert failed.startswith(f"cannot serve version v3 of {link}, still serving version v2: {v3 / 'model.pt'}")
        looked = time.monotonic() + FOLLOW_SECONDS + 0.5  # the link looked at again: not tried again while it stays
        while time.monotonic() < looked:
            assert predict() == ("v2", answer)
            time.sleep(0.2)
        assert len(lines(log, "cannot serve")) == 1

        _point(link, v1)  # the next move is followed again
        until(server, "v1")
        assert predict() == ("v1", old)
    assert lines(log, "serving version") == [f"serving version v2 of {link} (was v1)",
                                             f"serving version v1 of {link} (was v2)"]


@pytest.fixture
def versions(searched, tmp_path, monkeypatch):
    """models/tiny -> v1, and v2 beside it; the link looked at on every request."""
    import autotune.serve

    monkeypatch.setattr(autotune.serve, "FOLLOW_SECONDS", 0.0)
    link = tmp_path / "models" / "tiny"
    v1, v2 = (version_of(searched.model_dir, link, v) for v in ("v1", "v2"))
    _point(link, v1)
    return link, v1, v2


def test_a_request_never_waits_for_the_new_version_to_load(versions, monkeypatch):
    """The load of v2 is held up: requests meanwhile are answered by v1 at once; then v2 answers."""
    from starlette.testclient import TestClient

    import autotune.vision.serving as serving
    from autotune.serve import create_app

    link, _, v2 = versions
    loading, release = threading.Event(), threading.Event()
    build = serving.create_app

    def slow_build(model, **limits):
        if Path(model).name == "v2":
            loading.set()
            assert release.wait(timeout=60)
        return build(model, **limits)

    monkeypatch.setattr(serving, "create_app", slow_build)
    app = create_app(link)
    assert app.follows and app.version == "v1"
    _point(link, v2)
    try:
        with TestClient(app) as client:  # lifespan too, as uvicorn runs it
            assert client.get("/health").headers["x-model-version"] == "v1"
            assert loading.wait(timeout=30), "the new version was never loaded"
            for _ in range(5):
                started = time.monotonic()
                assert client.get("/health").json()["version"] == "v1"
                assert time.monotonic() - started < 5
            release.set()
            until(client, "v2")
            assert app.version == "v2"
    finally:
        release.set()


@pytest.mark.parametrize("damage", ["model.pt removed", "model.pt garbage", "folder deleted"])
def test_a_version_that_cannot_be_loaded_leaves_the_old_one_serving(versions, damage, caplog):
    from starlette.testclient import TestClient

    from autotune.serve import create_app

    link, _, v2 = versions
    app = create_app(link)
    if damage == "model.pt removed":
        (v2 / "model.pt").unlink()
    elif damage == "model.pt garbage":
        (v2 / "model.pt").write_bytes(b"\0" * 100)
    else:
        shutil.rmtree(v2)
    _point(link, v2)
    client = TestClient(app)
    with caplog.at_level(logging.INFO, logger="autotune"):
        deadline = time.monotonic() + FOLLOWED_WITHIN
        while not caplog.records:
            assert time.monotonic() < deadline, "the damaged version was never tried"
            assert client.get("/health").json()["version"] == "v1"
            time.sleep(0.05)
        for _ in range(5):
            assert client.get("/health").headers["x-model-version"] == "v1"
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "\n" not in record.getMessage()
    assert record.getMessage().startswith(f"cannot serve version v2 of {link}, still serving version v1: ")


def test_a_plain_folder_or_follow_false_is_served_as_loaded(versions):
    """The version folder itself, and the link with follow=False, keep answering v1; the link followed: v2."""
    from starlette.testclient import TestClient

    from autotune.serve import create_app

    link, v1, v2 = versions
    apps = {"plain": create_app(v1), "follow=False": create_app(link, follow=False), "followed": create_app(link)}
    _point(link, v2)
    clients = {name: TestClient(app) for name, app in apps.items()}
    until(clients["followed"], "v2")
    for name in ("plain", "follow=False"):
        assert not apps[name].follows
        for _ in range(3):
            assert clients[name].get("/health").headers["x-model-version"] == "v1", name


# ------------------------------------------------------------------------------------- what an operator's walk found
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """An image model `autotune train --out` exports (no Ray), as test_a_bad_top_k_... trains one."""
    import autotune.cli

    out = tmp_path_factory.mktemp("trained") / "digits"
    with contextlib.redirect_stdout(io.StringIO()):
        assert autotune.cli.main(["train", str(Path(__file__).parents[2] / "search_spaces" / "digits.yaml"),
                                  "--set", "model.arch=mlp", "--set", "model.width=8", "--set", "train.epochs=1",
                                  "--out", str(out)]) == 0
    return out


def one_part(data: bytes) -> bytes:
    """A multipart body (boundary `b`) holding `data` as the upload `file`."""
    return (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--b--\r\n")


def test_the_multipart_media_type_is_case_insensitive(trained):
    from starlette.testclient import TestClient

    import autotune.serve

    response = TestClient(autotune.serve.create_app(trained)).post(
        "/predict", content=one_part(PNG), headers={"content-type": "Multipart/Form-Data; boundary=b"})
    assert response.status_code == 200, response.text
    assert response.json()["file"] == "x.png"


def test_a_compressed_upload_is_a_415_saying_to_send_it_uncompressed(trained):
    """A gzip body got a misleading "invalid multipart" 400."""
    import gzip

    from starlette.testclient import TestClient

    import autotune.serve

    response = TestClient(autotune.serve.create_app(trained)).post(
        "/predict", content=gzip.compress(one_part(PNG)),
        headers={**multipart(b"")["headers"], "content-encoding": "gzip"})
    assert response.status_code == 415
    assert response.json()["detail"] == "Content-Encoding gzip is not supported; send the body uncompressed"


def test_an_upload_cut_off_by_its_client_ends_quietly(trained, caplog):
    """starlette's ClientDisconnect escaped the multipart parser as `Exception in ASGI application`."""
    import autotune.serve

    app = autotune.serve.create_app(trained)
    with caplog.at_level(logging.INFO, "autotune"):
        posted_then_gone(app, b"multipart/form-data; boundary=b", one_part(PNG)[:40])  # raised ClientDisconnect
    assert [r.levelname for r in caplog.records] == ["INFO"] and "went away" in caplog.records[0].message


def test_the_printed_address_takes_a_connection_before_the_server_accepts_it():
    """`autotune serve` printed its address once its socket was bound, and uvicorn listens on it only once started: a
    client that connected on reading the line was refused (ECONNREFUSED) while the server started. The socket
    listens before the line is printed: the connection waits for the server."""
    import socket

    from autotune.cli.common import listening_socket

    with listening_socket("127.0.0.1", 0) as sock, socket.create_connection(sock.getsockname(), timeout=5):
        pass


def test_a_body_python_multipart_cannot_parse_is_a_400_where_starlette_lets_its_error_through(trained, monkeypatch):
    """Starlette 0.46 passes python-multipart's own parse errors on: a malformed body was a 500 with a traceback."""
    from python_multipart.exceptions import MultipartParseError
    from starlette.testclient import TestClient

    import autotune.serve
    from autotune.vision.serving import InMemoryParser

    async def parse(self):
        raise MultipartParseError("Did not find CR at end of boundary (3)")

    monkeypatch.setattr(InMemoryParser, "parse", parse)
    response = TestClient(autotune.serve.create_app(trained)).post("/predict", **multipart(b"--bX\r\n"))
    assert response.status_code == 400
    assert response.json() == {"detail": "multipart body refused: Did not find CR at end of boundary (3)"}
