"""Helpers shared by the tests in tests/use (fixtures live in conftest.py)."""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).parents[2]
STARTUP_SECONDS = 120  # a server importing torch on a busy 2-core machine
FOLLOWED_WITHIN = 30  # seconds for a server to serve a version its link moved to: FOLLOW_SECONDS, then the load


def image_bytes(array: np.ndarray, mode: str | None = None, fmt: str = "PNG", **save: object) -> bytes:
    """The bytes of an image file holding `array` (converted to `mode` first, when given)."""
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def digit_png(image: np.ndarray, size: int = 64, mode: str = "L", fmt: str = "PNG") -> bytes:
    """A digits test image (uint8 (1, 8, 8)) scaled up to `size` pixels, as a file of `fmt` in `mode`."""
    big = Image.fromarray(image[0]).resize((size, size), Image.Resampling.NEAREST)
    return image_bytes(np.asarray(big), mode, fmt)


@dataclass
class Searched:
    root: Path  # the folder the search ran in
    run_dir: Path
    model_dir: Path
    result: object


def search_in(folder: Path, space: str | Path, overrides: list[str] | None = None) -> Searched:
    """Run `autotune.fit` with `folder` as the working directory (runs/ and models/ land there)."""
    import autotune

    before = Path.cwd()
    os.chdir(folder)
    try:
        result = autotune.fit(space, overrides=overrides, num_cpus=2)
    finally:
        os.chdir(before)
    return Searched(folder, Path(result.run_dir), Path(result.model_dir), result)


def trained_table_model(table: Path, name: str, model: str, train: str, missing: list[str] | None = None) -> Path:
    """The model `autotune train --out` exports (the tabular recipe's own export and card, no Ray) for the CSV
    `table` and its column `label`, with the space's `model` and `train` sections (YAML flow mappings) and
    `data.missing` when given; it lands beside the table, in model/."""
    import contextlib

    import autotune.cli

    space = table.with_name(f"{name}.yaml")
    texts = "" if missing is None else f", missing: {json.dumps(missing)}"
    space.write_text(f"name: {name}\nrecipe: tabular\ndata: {{dataset: csv, path: {table}, target: label{texts}}}\n"
                     f"model: {model}\ntrain: {train}\n")
    out = table.with_name("model")
    with contextlib.redirect_stdout(io.StringIO()):
        assert autotune.cli.main(["train", str(space), "--out", str(out)]) == 0
    return out


SERVING = re.compile(r"^serving .+ on (http://127\.0\.0\.1:\d+) ", re.M)


def free_port() -> int:
    """A loopback port nothing listens on (free when asked; tests/conftest.py's `free_port` fixture for the other
    test folders)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(model_dir: Path, log_path: Path, *options: str) -> Iterator[object]:
    """`autotune serve MODEL_DIR` in a subprocess on 127.0.0.1 and a port it binds itself (`--port 0`; the port is
    read from its first line), its output in `log_path`; yields an httpx client for it once /health answers, and
    stops the server on exit."""
    import httpx
    import pytest

    log = log_path.open("w+")
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from autotune.cli import main; sys.exit(main(sys.argv[1:]))",
         "serve", str(model_dir), "--host", "127.0.0.1", "--port", "0", *options],
        stdout=log, stderr=subprocess.STDOUT,
    )
    client = None
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read()}")
            if client is None and (address := SERVING.search(log_path.read_text())):
                client = httpx.Client(base_url=address.group(1), timeout=30)
            try:
                if client is not None and client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /health within {STARTUP_SECONDS} s")
            time.sleep(0.25)
        yield client
    finally:
        if client is not None:
            client.close()
        stop(process)
        log.close()


def version_of(model_dir: Path, link: Path, version: str, answer: int | None = None) -> Path:
    """A copy of the exported model in `model_dir` (through its link) as version `version` of the canonical model
    `link`, in its versions folder, the card's `version` changed; with `answer`, the model's output bias is raised
    by 100 at that index, so that the copy answers that label (a classifier) whatever it is given."""
    import torch

    from autotune.engine.export import versions_dir

    folder = versions_dir(link) / version
    shutil.copytree(Path(os.path.realpath(model_dir)), folder)
    card = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**card, "version": version}))
    if answer is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated
            model = torch.jit.load(folder / "model.pt")
            *_, bias = model.parameters()
            assert bias.shape == (len(card["labels"]),), "the last parameter is not the output layer's bias"
            with torch.no_grad():
                bias[answer] += 100
            torch.jit.save(model, folder / "model.pt")
    return folder


def until(client: object, version: str, seconds: float = FOLLOWED_WITHIN) -> object:
    """GET /health of an httpx or Starlette client, again and again (requests drive the server's look at its link),
    until it names `version`; its last answer."""
    deadline = time.monotonic() + seconds
    while (health := client.get("/health")).json()["version"] != version:
        assert time.monotonic() < deadline, f"still serving {health.json()['version']} after {seconds} s, not {version}"
        time.sleep(0.1)
    return health


def stop(process: subprocess.Popen) -> None:
    """Terminate a server started by a test, and kill it if it has not ended within 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def posted_then_gone(app: Any, content_type: bytes, first: bytes) -> None:
    """POST /predict to the ASGI `app` a body whose first chunk is `first`, then go away (an ASGI disconnect), as
    a client that a load balancer's timeout cut off mid-upload."""
    messages = iter([{"type": "http.request", "body": first, "more_body": True}])

    async def receive() -> dict:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict) -> None:
        pass

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"serve"), (b"content-type", content_type)],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
