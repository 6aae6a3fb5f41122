"""Paths whose names start with `~` but name no user (`~wine data.csv`, `--storage ~team_runs`): read as written,
as the shell reads them, where pathlib's expanduser raised RuntimeError ("Could not determine home directory") out
of the command, as a traceback or a recipe's failure."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.datasets import load_wine

from autotune.paths import expanded

NO_USER = "~no_such_user_x7"


def test_a_tilde_that_names_no_user_stays_as_written_and_one_that_does_is_expanded():
    assert expanded(f"{NO_USER}/runs") == Path(f"{NO_USER}/runs")
    assert expanded("~/runs") == Path.home() / "runs"


def test_a_storage_folder_named_with_a_tilde(in_tmp):
    from autotune.engine.storage import run_location

    assert run_location(f"{NO_USER}_runs", "x").state == in_tmp / f"{NO_USER}_runs" / "x"


def test_a_table_and_a_model_folder_named_with_a_tilde(in_tmp, cli):
    table = load_wine(as_frame=True).frame.head(120)
    table.to_csv(f"{NO_USER} wine é.csv", index=False)
    Path("space.yaml").write_text(f"name: wine\nrecipe: tabular\ndata: {{dataset: csv, path: '{NO_USER} wine é.csv', "
                                  "target: target}\ntrain: {epochs: 1}\n")
    code, out, err = cli("train", "space.yaml", "--out", f"{NO_USER}_model")
    assert code == 0, err
    assert (Path(f"{NO_USER}_model") / "model.json").is_file()
    pd.DataFrame(table.drop(columns="target").head(3)).to_csv("rows.csv", index=False)
    code, out, err = cli("predict", f"{NO_USER}_model", "rows.csv")
    assert code == 0 and len(out.strip().splitlines()) == 3, err
    code, out, err = cli("predict", f"{NO_USER}_gone", "rows.csv")  # a folder of that name that is not there
    assert code == 2 and err.count("\n") == 1 and f"MODEL_DIR {NO_USER}_gone does not exist" in err, err
