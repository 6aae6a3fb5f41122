"""A tracking URI's password is never shown, logged or written: `http://bob:***@host` in the error of an unreachable
server, the warning of a tracker that went away, and W&B's login error. (The summary's line, tracking.json and the
space file logged on the parent run, against a real server: tests/engine/test_tracking.py.)"""
from __future__ import annotations

import logging

import pytest

from autotune.errors import UserError
from autotune.space.types import MlflowSettings, WandbSettings
from autotune.tracking import Tracking, hide_passwords

SECRET = "s3cretPW"


@pytest.mark.parametrize("text, shown", [
    ("http://bob:s3cretPW@127.0.0.1:5000", "http://bob:***@127.0.0.1:5000"),
    ("https://bob:s3cretPW@mlflow.example.com/", "https://bob:***@mlflow.example.com/"),
    ("postgresql://bob:s3c:ret@PW@db:5432/mlflow", "postgresql://bob:***@db:5432/mlflow"),  # a raw ':' and '@'
    ("mysql+pymysql://bob:s3cretPW@db/mlflow", "mysql+pymysql://bob:***@db/mlflow"),
    ("postgresql://db/mlflow?sslmode=require&password=s3cretPW", "postgresql://db/mlflow?sslmode=require&password=***"),
    ("http//bob:s3cretPW@127.0.0.1:5000", "http//bob:***@127.0.0.1:5000"),  # a near miss, quoted in its error
    ("bob:s3cretPW@127.0.0.1:5000", "bob:***@127.0.0.1:5000"),
    ("store http://bob:s3cretPW@h:1 (API request to http://bob:s3cretPW@h:1/api/2.0/x failed)",
     "store http://bob:***@h:1 (API request to http://bob:***@h:1/api/2.0/x failed)"),
    ("'http://bob:s3cretPW@h:1'", "'http://bob:***@h:1'"),
], ids=["http", "https", "raw-characters", "database", "query", "no-scheme-colon", "no-scheme", "twice", "quoted"])
def test_a_uri_s_password_is_hidden(text, shown):
    assert hide_passwords(text) == shown


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:5000", "http://bob@127.0.0.1:5000", "sqlite:///mlflow.db", "file:///data/mlruns",
    "databricks://scope:prefix", "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded",
    "train: {epochs: 3}, owner: bob@example.com",
])
def test_a_text_without_a_password_is_left_as_it_is(text):
    assert hide_passwords(text) == text


def test_an_unreachable_server_s_error_hides_the_password(free_port):
    """The error named the URI twice with its password: in its own words and in MLflow's (`API request to ...`)."""
    pytest.importorskip("mlflow")
    from autotune.tracking.mlflow_runs import MlflowRuns

    runs = MlflowRuns(MlflowSettings(uri=f"http://alice:{SECRET}@127.0.0.1:{free_port()}"), "toy", {})
    with pytest.raises(UserError) as caught:
        runs.check()
    message = str(caught.value)
    assert "cannot reach the MLflow tracking store http://alice:***@127.0.0.1:" in message
    assert SECRET not in message and SECRET not in runs.label


def test_a_password_in_mlflow_tracking_uri_is_hidden_in_its_label():
    pytest.importorskip("mlflow")
    from autotune.tracking.mlflow_runs import MlflowRuns

    runs = MlflowRuns(MlflowSettings(), "toy", {"MLFLOW_TRACKING_URI": f"http://alice:{SECRET}@127.0.0.1:1"})
    assert runs.label == "MLflow at http://alice:***@127.0.0.1:1" and runs.uri.endswith(f"{SECRET}@127.0.0.1:1")


def test_the_warning_of_a_tracker_that_went_away_hides_the_password(caplog):
    class Failing:
        label = "MLflow at http://alice:***@127.0.0.1:1"
        fills_in = True

        def trial_result(self, *args):
            raise ConnectionError(f"API request to http://alice:{SECRET}@127.0.0.1:1/api/2.0/mlflow/runs/log-batch "
                                  "failed with exception " + "word " * 100)

    tracking = Tracking([Failing()])
    with caplog.at_level(logging.WARNING, logger="autotune"):
        tracking.trial_result("a", {}, {"val_accuracy": 0.5}, 1)
    (warning,) = [r.getMessage() for r in caplog.records if "failed (ConnectionError" in r.getMessage()]
    assert "API request to http://alice:***@127.0.0.1:1/api" in warning and SECRET not in warning


def test_wandb_s_login_error_hides_a_password(monkeypatch):
    """W&B's error names the host it tried (WANDB_BASE_URL), which may carry a login."""
    wandb = pytest.importorskip("wandb")
    from autotune.tracking.wandb_runs import WandbRuns

    def login(**kwargs):
        raise wandb.errors.AuthenticationError(f"Failed to verify credentials with https://bob:{SECRET}@wandb.local: "
                                               "connection refused")

    monkeypatch.setattr(wandb, "login", login)
    with pytest.raises(UserError) as caught:
        WandbRuns(WandbSettings(mode="online", project="toy"), "toy", {}).check()
    assert "https://bob:***@wandb.local" in str(caught.value) and SECRET not in str(caught.value)
