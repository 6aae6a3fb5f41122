"""bench/record_curves.py records a table end to end: a 1-point, 1-epoch table of the offline digits data, trained
with the shipped recipe, its test accuracy read from the checkpoint the recipe reports, packed into tmp_path."""
from __future__ import annotations

import gzip
import json
import multiprocessing.dummy
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import record_curves  # noqa: E402

TINY = {
    "fixed": {"data": record_curves.DIGITS_DATA, "model": {"arch": "mlp"},
              "optimizer": {"name": "sgd", "momentum": 0.9}},
    "grid": {"optimizer.lr": [0.1]},
    "epochs": 1,
}


def test_a_one_point_table_is_recorded_and_packed(tmp_path, monkeypatch):
    """The recording runs in this process (a thread pool stands in for the spawned one, so that the table and
    the folder patched here reach `_record`), and writes under tmp_path only."""
    monkeypatch.setattr(record_curves, "CURVES", tmp_path)
    monkeypatch.setitem(record_curves.TABLES, "tiny", TINY)
    monkeypatch.setattr(record_curves, "multiprocessing", SimpleNamespace(get_context=lambda _: multiprocessing.dummy))
    threads = torch.get_num_threads()
    try:
        record_curves.record("tiny", workers=1)
    finally:
        torch.set_num_threads(threads)  # _record trains on 1 thread, as each recording worker does

    with gzip.open(tmp_path / "tiny.json.gz", "rt") as packed:
        table = json.load(packed)
    assert table["points"] == [[0.1]] and table["epochs"] == 1 and table["diverged_at"] == [None]
    assert [len(table["curves"][m][0]) for m in record_curves.METRICS] == [1] * len(record_curves.METRICS)
    # measured on the test split from the last checkpoint, not the chance level a missing checkpoint would leave
    assert table["test_accuracy"][0] > 0.5
    assert len((tmp_path / ".partial" / "tiny.jsonl").read_text().splitlines()) == 1
