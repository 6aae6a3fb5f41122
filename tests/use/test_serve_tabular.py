"""`autotune serve` of a tabular model: a real uvicorn server on loopback answering JSON rows with the predictions
of `autotune predict` and `autotune.load_model`, and a 4xx naming what is wrong for a bad row or a bad body. The
model: `autotune train --out` on a small CSV written here (numbers, text and bools, some missing), a few epochs."""
from __future__ import annotations

import asyncio
import gzip
import json
import logging
import math
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import autotune
from autotune.recipes import tabular
from autotune.serve import PUBLIC_CARD
from autotune.tabular.rows import BadRow, TabularPredictor
from autotune.engine.export import _point
from use_support import (SERVING, STARTUP_SECONDS, posted_then_gone, served, stop, trained_table_model, until,
                         version_of)

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

MAX_ROWS = 50
MAX_BYTES = 50_000


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """people.csv: age (some missing), income, colour (some missing), member -> label yes/no."""
    rng = np.random.default_rng(0)
    n = 200
    age = rng.normal(45, 12, n).round(1)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    member = rng.random(n) < 0.4
    score = (age - 45) / 12 + 1.5 * (colour == "red") - member + rng.normal(0, 0.3, n)
    age[(rng.random(n) < 0.1) | (np.arange(n) == 0)] = np.nan
    colour[(rng.random(n) < 0.1) | (np.arange(n) == 1)] = None
    path = tmp_path_factory.mktemp("table") / "people.csv"
    pd.DataFrame({"age": age, "income": rng.integers(20_000, 90_000, n), "colour": colour, "member": member,
                  "label": np.where(score > 0, "yes", "no")}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(table) -> Path:
    """The model `autotune train --out` exports (the recipe's own export and card, no Ray)."""
    return trained_table_model(table, "people", "{width: 16, depth: 1}", "{epochs: 4, batch_size: 32}")


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    with served(model_dir, tmp_path_factory.mktemp("serve") / "server.log", "--max-rows", str(MAX_ROWS),
                "--max-upload-mb", str(MAX_BYTES / 2**20)) as client:
        yield client


def json_rows(table: Path, n: int) -> list[dict]:
    """The first `n` rows of the table as JSON sends them (a missing value: null)."""
    rows = pd.read_csv(table).head(n).to_dict("records")
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def test_health_and_model_card(server, model_dir):
    health = server.get("/health").json()
    assert health == {"status": "ok", "model": "people", "version": health["version"], "task": "classification"}
    assert health["version"].startswith("train-")  # `autotune train --out` made the model
    assert server.get("/health").headers["x-model-version"] == health["version"]
    card = server.get("/model").json()
    whole = json.loads((model_dir / "model.json").read_text())
    assert card == {**{key: whole[key] for key in PUBLIC_CARD if key in whole},
                    "columns": {"numeric": ["age", "income"], "categorical": ["colour", "member"]}}
    assert card["labels"] == ["no", "yes"] and card["categories"]["colour"] == ["blue", "green", "red"]
    assert "scalers" in whole and "base_dir" in whole and "config" in whole  # served only with `--full-card`


def test_rows_get_the_predictions_of_predict_and_load_model(server, model_dir, table, tmp_path, cli):
    rows = json_rows(table, 20)
    assert any(row["age"] is None for row in rows) and any(row["colour"] is None for row in rows)
    response = server.post("/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 20 and {tuple(p) for p in predictions} == {("label", "probability")}

    pd.read_csv(table).head(20).to_csv(tmp_path / "rows.csv", index=False)
    code, out, err = cli("predict", model_dir, tmp_path / "rows.csv")
    assert code == 0 and err == ""
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["row"] for r in records] == list(range(20))
    assert [{k: v for k, v in r.items() if k not in ("file", "row")} for r in records] == [
        tabular.rounded(p) for p in predictions]  # printed to 6 digits, as an image model's

    model = autotune.load_model(model_dir)
    assert isinstance(model, TabularPredictor) and model.card["recipe"] == "tabular"
    assert model.predict(rows) == predictions
    assert model.predict(pd.read_csv(table).head(20)) == predictions  # a DataFrame: its rows, NaN as missing
    assert model.predict(rows[0]) == predictions[:1]  # one row
    assert model.predict(pd.read_csv(table).iloc[0]) == predictions[:1]  # one row of a DataFrame: a Series
    assert server.post("/predict", json={"rows": []}).json() == {"predictions": []}


GOOD = {"age": 50.0, "income": 40_000, "colour": "red", "member": True}


@pytest.mark.parametrize(("change", "column", "words"), [
    ({"age": ...}, "age", "is missing"),
    ({"income": "rich"}, "income", "expects a number, got the text 'rich'"),
    ({"member": [1]}, "member", "expects one value (text, a number or a bool), got list [1]"),
], ids=["missing-column", "text-in-a-numeric-column", "list-in-a-categorical-column"])
def test_a_bad_row_is_a_422_naming_the_row_and_the_column(server, change, column, words):
    bad = {k: v for k, v in {**GOOD, **change}.items() if v is not ...}
    response = server.post("/predict", json={"rows": [GOOD, bad]})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"row 1, column {column!r}: ") and words in detail


@pytest.mark.parametrize("value", [b"Infinity", b"-Infinity", b'"inf"'])
def test_an_infinite_number_is_a_422_naming_the_row_and_the_column(server, value):
    """JSON's non-standard Infinity, which Python's json reads, or the text "inf": not a number the model can take
    (it was read as a missing value)."""
    body = json.dumps({"rows": [GOOD, {**GOOD, "income": "VALUE"}]}).encode().replace(b'"VALUE"', value)
    response = server.post("/predict", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("row 1, column 'income': expects a finite number, got ")


@pytest.mark.parametrize("value", [1e308, -1e300, "1e308"])
def test_a_number_beyond_float32_once_standardised_is_a_422_not_a_null_prediction(server, value):
    """A huge finite number: it overflowed float32 in the encoding, and the answer was a 200 with probability
    null."""
    response = server.post("/predict", json={"rows": [GOOD, {**GOOD, "income": value}]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("row 1, column 'income': expects a number the model can take, got ")


def test_numbers_as_text_and_extra_keys_are_read(server, model_dir):
    """A number sent as text is read as that number, and a key the model does not know is left out: the row gets
    the prediction of the cleanly typed row."""
    clean = {**GOOD, "age": None}
    loose = {**clean, "income": "40000", "note": "ignored"}
    response = server.post("/predict", json={"rows": [loose]})
    assert response.status_code == 200, response.text
    model = autotune.load_model(model_dir)
    assert response.json()["predictions"] == model.predict([clean])
    assert model.predict([{**clean, "income": 90_000}]) != model.predict([clean])  # the income read counts


def test_an_unseen_category_is_predicted_as_unknown_and_named(server, model_dir):
    """A colour the model did not see is its "unknown" index, as in the model's test metrics (it was a 422, and
    so the whole batch failed), and the prediction names it; "" and "NA" are missing, as in a CSV file."""
    rows = [GOOD, {**GOOD, "colour": "purple"}, {**GOOD, "colour": "NA", "age": ""}]
    response = server.post("/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert predictions == autotune.load_model(model_dir).predict(rows)
    assert "unseen_categories" not in predictions[0] and predictions[1]["unseen_categories"] == {"colour": "purple"}
    assert predictions[2] == autotune.load_model(model_dir).predict([{**GOOD, "colour": None, "age": None}])[0]


def chunked(size: int):
    """A JSON body of `size` bytes, sent chunked: no Content-Length."""
    yield b'{"rows": [], "padding": "'
    yield b"x" * size
    yield b'"}'


JSON = {"content-type": "application/json"}

# (id, httpx arguments, expected status, words of the JSON detail)
MALFORMED = [
    ("not-json", {"content": b"age=50", "headers": JSON}, 400, "not JSON"),
    ("truncated-json", {"content": b'{"rows": [{"age": 5', "headers": JSON}, 400, "not JSON"),
    ("a-list", {"json": [GOOD]}, 400, "not an object holding a `rows` list"),
    ("no-rows", {"json": {"row": [GOOD]}}, 400, "not an object holding a `rows` list"),
    ("rows-not-a-list", {"json": {"rows": GOOD}}, 400, "not an object holding a `rows` list"),
    ("a-row-not-an-object", {"json": {"rows": [[50, 40000]]}}, 422, "row 0: is a list"),
    ("form-body", {"data": {"rows": "x"}}, 415, "application/json"),
    ("no-content-type", {"content": b'{"rows": []}'}, 415, "application/json"),
    ("too-many-rows", {"json": {"rows": [GOOD] * (MAX_ROWS + 1)}}, 413, f"over the limit of {MAX_ROWS} rows"),
    ("body-over-limit", {"json": {"rows": [], "padding": "x" * MAX_BYTES}}, 413, "over the limit"),
    ("chunked-body-over-limit", {"content": chunked(MAX_BYTES), "headers": JSON}, 413, "over the limit"),
    ("get-predict", {"method": "GET"}, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(("arguments", "status", "words"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_request_gets_a_4xx_json_error(server, arguments, status, words):
    arguments = dict(arguments)
    if arguments.get("content") is not None and not isinstance(arguments["content"], bytes):
        arguments["content"] = chunked(MAX_BYTES)  # a generator is used up: a fresh one
    response = server.request(arguments.pop("method", "POST"), "/predict", **arguments)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["detail"]


def test_still_serving_after_the_malformed_requests(server, model_dir):
    for _, arguments, status, _ in MALFORMED:
        test_a_malformed_request_gets_a_4xx_json_error(server, arguments, status, "")
    response = server.post("/predict", json={"rows": [GOOD]})
    assert response.json()["predictions"] == autotune.load_model(model_dir).predict([GOOD])


def test_a_client_that_sends_the_whole_body_first_gets_the_413(server):
    """urllib (and requests) send a body before reading the answer: a refused body is read to its end, so that
    such a client gets the 413 rather than a connection reset, a body declared by its length or sent in chunks."""
    body = json.dumps({"rows": [], "padding": "x" * 20_000_000}).encode()
    for extra in ({"Content-Length": str(len(body))}, {"Transfer-Encoding": "chunked"}):
        data = body if "Content-Length" in extra else iter([body[i:i + 65536] for i in range(0, len(body), 65536)])
        request = urllib.request.Request(f"{server.base_url}/predict", data=data, method="POST",
                                         headers={"Content-Type": "application/json", **extra})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 413 and "over the limit" in json.loads(refused.value.read())["detail"]


@pytest.mark.parametrize("option", ["--max-pixels=100", "--max-files=2"])
def test_image_options_are_refused_for_a_tabular_model(model_dir, cli, option):
    code, out, err = cli("serve", model_dir, option)
    assert code == 2 and "serving" not in out and len(err.strip().splitlines()) == 1
    flag = option.split("=")[0]
    assert f"{flag} does not apply to the model in" in err and "the serve() of recipe 'tabular' takes no" in err
    assert err.strip().endswith(f"drop {flag}")


def test_top_k_lists_a_classifier_s_labels_in_predict_and_serve(server, model_dir, table, cli):
    rows = json_rows(table, 5)
    expected = autotune.load_model(model_dir).predict(rows, top_k=2)
    assert all(len(p["top_k"]) == 2 for p in expected)
    code, out, err = cli("predict", model_dir, table, "--top-k", "2")
    assert code == 0 and not [line for line in err.splitlines() if "outside the range the model trained on" not in line]
    printed = [json.loads(line) for line in out.splitlines()[:5]]
    assert [{k: v for k, v in p.items() if k not in ("file", "row")} for p in printed] == [
        tabular.rounded(p) for p in expected]
    assert server.post("/predict?top_k=2", json={"rows": rows}).json()["predictions"] == expected
    for k, words in [("0", "greater than or equal to 1 (got '0')"),
                     ("1001", "less than or equal to 1000 (got '1001')")]:
        response = server.post(f"/predict?top_k={k}", json={"rows": rows})  # as the image server refuses them
        assert response.status_code == 422 and response.json()["detail"] == (
            f"query parameter top_k: Input should be {words}; allowed: a whole number >= 1 and <= 1000")


def test_a_top_k_that_is_not_a_number_is_one_text_naming_the_parameter(model_dir):
    """FastAPI's own refusal of a query parameter answers {"detail": one text}, as every other refusal does, not
    its list of pydantic errors."""
    from starlette.testclient import TestClient

    import autotune.serve

    response = TestClient(autotune.serve.create_app(model_dir)).post("/predict?top_k=two", json={"rows": [GOOD]})
    assert response.status_code == 422
    assert response.json()["detail"] == ("query parameter top_k: Input should be a valid integer, unable to parse "
                                         "string as an integer (got 'two'); allowed: a whole number >= 1 and <= 1000")


def test_the_docs_serve_example_answers_rows_and_refuses_a_bad_body(model_dir):
    """docs/recipes.md's `serve` (for a recipe whose load_model is the tabular one): rows get the model's
    predictions, a body without rows a one-line 400, a body over its limit a 413."""
    from starlette.testclient import TestClient

    doc = (Path(__file__).parents[2] / "docs" / "recipes.md").read_text()
    (example,) = [b for b in re.findall(r"^```python\n(.*?)^```", doc, flags=re.S | re.M) if "def serve(" in b]
    namespace = {"load_model": autotune.load_model}
    exec(compile(example, "recipes.md", "exec", dont_inherit=True), namespace)  # as a recipe file is compiled
    client = TestClient(namespace["serve"](str(model_dir), max_bytes=MAX_BYTES))
    answer = client.post("/predict", json={"rows": [GOOD]})
    assert answer.status_code == 200 and answer.json()["predictions"] == autotune.load_model(model_dir).predict([GOOD])
    refused = client.post("/predict", json={"row": [GOOD]})
    assert refused.status_code == 400 and refused.json()["detail"].startswith("not a JSON object holding `rows`")
    assert client.post("/predict", json={"rows": [GOOD] * 2000}).status_code == 413
    assert client.get("/health").json()["model"] == "people"


def test_a_canonical_tabular_model_follows_its_link(model_dir, table, tmp_path, monkeypatch):
    """Any recipe's app is followed (the generic layer): once the link moves to v2, whose weights answer the other
    label to every row, /predict answers with v2's predictions and header."""
    from starlette.testclient import TestClient

    import autotune.serve

    monkeypatch.setattr(autotune.serve, "FOLLOW_SECONDS", 0.0)  # the link looked at on every request
    rows = json_rows(table, 20)
    labels = ["no", "yes"]  # the card's
    other = labels[1 - labels.index(TabularPredictor(model_dir).predict(rows)[0]["label"])]
    link = tmp_path / "models" / "people"
    v1, v2 = version_of(model_dir, link, "v1"), version_of(model_dir, link, "v2", answer=labels.index(other))
    _point(link, v1)
    client = TestClient(autotune.serve.create_app(link, max_rows=MAX_ROWS))
    before = client.post("/predict", json={"rows": rows})
    assert before.headers["x-model-version"] == "v1"
    assert before.json()["predictions"] == TabularPredictor(v1).predict(rows)
    _point(link, v2)
    until(client, "v2")
    after = client.post("/predict", json={"rows": rows})
    assert after.headers["x-model-version"] == "v2"
    assert after.json()["predictions"] == TabularPredictor(v2).predict(rows)
    assert {p["label"] for p in after.json()["predictions"]} == {other}


# ------------------------------------------------------------------------------------- what an operator's walk found
def test_a_whole_number_beyond_float64_is_a_422_not_a_500(server, model_dir):
    """A JSON integer of 401 digits: OverflowError in float(), a 500 and a bare OverflowError from predict."""
    response = server.post("/predict", json={"rows": [GOOD, {**GOOD, "income": 10**400}]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("row 1, column 'income': expects a finite number, got 1000")
    with pytest.raises(BadRow, match=r"^row 0, column 'income': expects a finite number, got "):
        autotune.load_model(model_dir).predict([{**GOOD, "income": -10**400}])


def test_a_422_echoes_a_huge_value_cut_short(model_dir):
    from starlette.testclient import TestClient

    import autotune.serve

    response = TestClient(autotune.serve.create_app(model_dir)).post(
        "/predict", json={"rows": [{**GOOD, "income": "x" * 1_000_000}]})
    assert response.status_code == 422 and len(response.json()["detail"]) < 200
    assert response.json()["detail"].startswith("row 0, column 'income': expects a number, got the text 'xxx")


def test_head_health_answers_for_load_balancers(server):
    response = server.head("/health")
    assert response.status_code == 200 and response.headers["x-model-version"]


def test_a_compressed_body_is_a_415_saying_to_send_it_uncompressed(server):
    response = server.post("/predict", content=gzip.compress(b'{"rows": []}'),
                           headers={**JSON, "content-encoding": "gzip"})
    assert response.status_code == 415
    assert response.json()["detail"] == "Content-Encoding gzip is not supported; send the body uncompressed"


def test_a_body_that_stalls_gets_a_408(model_dir):
    """A client that sends part of its body, then nothing: answered 408 after the read timeout, not held forever."""
    import autotune.serve

    async def stalled():
        yield b'{"rows'
        await asyncio.sleep(20)
        yield b'": []}'

    async def scenario():
        app = autotune.serve.create_app(model_dir, read_timeout=0.5)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as client:
            return await asyncio.wait_for(client.post("/predict", content=stalled(), headers=JSON), timeout=15)

    started = time.monotonic()
    response = asyncio.run(scenario())
    assert response.status_code == 408 and "sent nothing for 0.5 s" in response.json()["detail"]
    assert response.headers["connection"] == "close" and time.monotonic() - started < 10


def test_a_client_that_goes_away_mid_body_ends_quietly(model_dir, caplog):
    """starlette's ClientDisconnect escaped as `Exception in ASGI application` and a long traceback."""
    import autotune.serve

    app = autotune.serve.create_app(model_dir)
    with caplog.at_level(logging.INFO, "autotune"):
        posted_then_gone(app, b"application/json", b'{"rows": [')  # raised ClientDisconnect
    assert [r.levelname for r in caplog.records] == ["INFO"] and "went away" in caplog.records[0].message


@pytest.fixture
def uvicorn_config(monkeypatch):
    """The uvicorn.Config `autotune serve` would run, its server not started (in this process, no port held)."""
    import uvicorn

    configs: list = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: configs.append(self.config))
    return configs


def test_server_options_reach_uvicorn_and_the_app(model_dir, cli, uvicorn_config):
    code, out, err = cli("serve", model_dir, "--port", "0", "--keep-alive", "75", "--graceful-timeout", "10",
                         "--limit-concurrency", "8", "--read-timeout", "12")
    assert code == 0, err
    (config,) = uvicorn_config
    assert (config.timeout_keep_alive, config.timeout_graceful_shutdown, config.limit_concurrency) == (75, 10, 8)
    assert config.app.read_timeout == 12


def test_an_ipv6_host_is_printed_in_brackets(model_dir, cli, uvicorn_config):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    code, out, err = cli("serve", model_dir, "--host", "::1", "--port", "0")
    assert code == 0 and re.search(r" on http://\[::1\]:\d+ ", out), out


@pytest.mark.parametrize(("option", "words"), [
    ("--max-upload-mb=nan", "--max-upload-mb must be a finite number > 0, got nan"),
    ("--max-upload-mb=inf", "--max-upload-mb must be a finite number > 0, got inf"),
    ("--max-upload-mb=0.0000001", "--max-upload-mb must be > 0, got 1e-07 (0 once converted"),
    ("--read-timeout=0", "--read-timeout must be > 0, got 0.0"),
    ("--keep-alive=-5", "--keep-alive must be > 0, got -5.0"),
    ("--graceful-timeout=inf", "--graceful-timeout must be a finite number > 0, got inf"),
    ("--limit-concurrency=0", "--limit-concurrency must be > 0, got 0"),
])
def test_numeric_options_must_be_finite_and_positive(model_dir, cli, uvicorn_config, option, words):
    """`nan` and `inf` gave a traceback; 0.0000001 MB (0 bytes) was accepted, and refused every request."""
    code, out, err = cli("serve", model_dir, option)
    assert code == 2 and out == "" and err.startswith(f"autotune serve: error: {words}")
    assert len(err.strip().splitlines()) == 1


def test_sigterm_ends_the_server_within_the_graceful_timeout_despite_a_stalled_upload(model_dir, tmp_path):
    """A body declared as 5000 bytes, 6 sent, then nothing: uvicorn waited for it forever after SIGTERM."""
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from autotune.cli import main; sys.exit(main(sys.argv[1:]))",
             "serve", str(model_dir), "--host", "127.0.0.1", "--port", "0", "--read-timeout", "120",
             "--graceful-timeout", "1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (address := SERVING.search(log_path.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        host, port = address.group(1).removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: serve\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 5000\r\n\r\n{\"rows")
            time.sleep(1)  # the request reaches the app, which waits for the rest of the body
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = process.wait(timeout=60)
        assert time.monotonic() - started < 20, log_path.read_text()
        assert code == -signal.SIGTERM, log_path.read_text()  # uvicorn ends by the signal, once shut down
    finally:
        stop(process)
