"""autotune.preflight: the dry build of every searched model, the export folder, the cluster address, the
argparse types. Offline and without Ray."""
from __future__ import annotations

import argparse
import errno
import getpass
import os
import socket
from types import SimpleNamespace

import pytest

from autotune.cli.common import non_negative_float, positive_int
from autotune.errors import UserError
from autotune.preflight import (
    check_address, check_writable, cluster_address, dry_run_models, model_configs, preflight,
)
from autotune.recipes import image_classification as recipe
from autotune.space import load_space
from autotune.vision.data import load

SCHEMA = lambda name, base: recipe.SCHEMA  # noqa: E731


def space(model: str, export: str = "models/pre"):
    return load_space(f"name: pre\ndata: {{dataset: fake}}\nmodel: {model}\nexport: {{dir: {export}}}\n",
                      schema_for=SCHEMA)


@pytest.fixture(scope="module")
def tiny():
    return load("fake", "unused", samples=40, image_size=8, classes=3, val_fraction=0.2, test_fraction=0.2)


def test_model_configs_cover_the_default_and_each_searched_option():
    s = space("{arch: {choice: [mlp, simple_cnn]}, width: {choice: [8, 16]}, dropout: {uniform: [0, 0.5]}}")
    configs = model_configs(s)
    shown = [what for what, _ in configs]
    assert shown == ["the default configuration (model.arch='mlp', model.width=8, model.dropout=0.25)",
                     "the searched option model.arch='simple_cnn'", "the searched option model.width=16"]
    assert [c["model"]["arch"] for _, c in configs] == ["mlp", "simple_cnn", "mlp"]
    assert [c["model"]["width"] for _, c in configs] == [8, 8, 16]


def test_model_configs_follow_conditional_options():
    s = space("{choice: [{arch: mlp, depth: {choice: [1, 3]}}, {arch: simple_cnn, width: {choice: [4, 8]}}]}")
    configs = {what: c["model"] for what, c in model_configs(s)}  # options without a `name` are numbered
    assert list(configs) == ["the default configuration (model='0', model[0].depth=1)",
                             "the searched option model='1'", "the searched option model[0].depth=3",
                             "the searched option model[1].width=8"]
    assert configs["the searched option model='1'"] == {"arch": "simple_cnn", "width": 4, "depth": None,
                                                        "dropout": 0.0, "pretrained": False}
    assert configs["the searched option model[1].width=8"]["width"] == 8


def test_dry_run_builds_each_option_and_names_the_one_that_does_not_fit(tiny, tmp_path):
    s = space("{arch: {choice: [mlp, vit_tiny_patch16_224]}}", export=str(tmp_path / "m"))
    with pytest.raises(UserError) as info:
        preflight(s, recipe, tiny)
    text = str(info.value)
    assert text.startswith("the searched option model.arch='vit_tiny_patch16_224': model 'vit_tiny_patch16_224' "
                           "does not fit 8x8 inputs: AssertionError: Input height (8) doesn't match model (224)")
    assert text.endswith("; pick a smaller model or a larger image_size") and "\n" not in text
    preflight(space("{arch: {choice: [mlp, simple_cnn]}}", str(tmp_path / "m")), recipe, tiny)  # both fit


def test_every_failing_configuration_is_listed(tiny):
    s = space("{arch: {choice: [vit_tiny_patch16_224, deit_tiny_patch16_224]}}")
    with pytest.raises(UserError) as info:
        dry_run_models(s, recipe, tiny)
    lines = str(info.value).splitlines()
    assert lines[0] == "2 model configurations fail the dry run:"
    assert lines[1].startswith("  the default configuration (model.arch='vit_tiny_patch16_224'): model "
                               "'vit_tiny_patch16_224' does not fit 8x8 inputs")
    assert lines[2].startswith("  the searched option model.arch='deit_tiny_patch16_224': model "
                               "'deit_tiny_patch16_224' does not fit 8x8 inputs")


def test_a_recipe_without_dry_run_is_not_checked_and_its_bugs_are_one_line(tiny):
    s = space("{arch: {choice: [mlp, simple_cnn]}}")
    dry_run_models(s, SimpleNamespace(), tiny)
    calls = []

    def dry_run(config, data):
        calls.append(config["model"]["arch"])
        raise KeyError("head")

    with pytest.raises(UserError, match=r"^2 model configurations.*\n  the default configuration \(model.arch='mlp'\): "
                       r"the recipe's dry run failed: KeyError: 'head'"):
        dry_run_models(s, SimpleNamespace(dry_run=dry_run), tiny)
    assert calls == ["mlp", "simple_cnn"]


def test_no_export_skips_the_export_check(tiny, tmp_path):
    (tmp_path / "file").write_text("x")
    s = space("{arch: mlp}", export=str(tmp_path / "file"))
    with pytest.raises(UserError, match="export.dir .* is a file"):
        preflight(s, recipe, tiny)
    preflight(s, recipe, tiny, export=False)


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "models" / "x", "export.dir", "--set export.dir=models/x")
    assert (tmp_path / "new" / "models").is_dir()  # created, as the export would
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"is not writable \(Not a directory: .*file/sub\); give a folder you can "
                       r"write, e.g. --set export.dir=models/x"):
        check_writable(tmp_path / "file" / "sub" / "x", "export.dir", "--set export.dir=models/x")


@pytest.mark.unprivileged
def test_an_export_dir_in_a_teammate_s_folder_names_the_folder_its_owner_and_the_chmod(tmp_path):
    """A models folder a teammate made under `umask 022`: the refusal named a temporary file that is not there
    (Permission denied: models/tmpuioo830x) and, as the way on, the export.dir it refused."""
    models = tmp_path / "models"
    models.mkdir(mode=0o555)
    with pytest.raises(UserError) as refused:
        check_writable(models / "b1", "export.dir", "--set export.dir=models/b1")
    assert str(refused.value) == (
        f"export.dir '{models / 'b1'}' is not writable: {models} ({getpass.getuser()}, dr-xr-xr-x) is not writable "
        f"by you; ask its owner to `chmod -R g+w {models}` (a team's shared folder: searches and exports run under "
        "`umask 002` make their files the group's to read and write); or give a folder you can write, e.g. --set "
        "export.dir=models/b1")


@pytest.mark.skipif(os.geteuid() == 0 or os.stat("/usr").st_gid in os.getgroups(),
                    reason="a system folder of no group of this user's")
def test_a_system_folder_gets_no_advice_to_open_it_to_a_group():
    with pytest.raises(UserError) as refused:
        check_writable("/usr/autotune-model", "--out", "--out models/x")
    assert str(refused.value) == ("--out '/usr/autotune-model' is not writable: /usr (root, drwxr-xr-x) is not "
                                  "writable by you; or give a folder you can write, e.g. --out models/x")


@pytest.fixture
def closed_port(free_port) -> int:
    """A loopback port nothing listens on."""
    return free_port()


def test_check_address(closed_port, monkeypatch, tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_address(f"127.0.0.1:{port}")
        check_address(f"ray://127.0.0.1:{port}")
    check_address(None)
    with pytest.raises(UserError, match=f"cannot reach the Ray cluster at '127.0.0.1:{closed_port}': nothing "
                       f"listens on 127.0.0.1:{closed_port}; start it with `ray start --head`"):
        check_address(f"127.0.0.1:{closed_port}")
    for bad in ("headnode", "headnode:port", "10.0.0.1:0", ":6379", "ray://"):
        with pytest.raises(UserError, match="is not 'auto', HOST:PORT or ray://HOST:PORT"):
            check_address(bad)
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port}")
    with pytest.raises(UserError, match=rf"at 'auto' \(127.0.0.1:{closed_port}\): nothing listens"):
        check_address("auto")
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))  # no cluster recorded: Ray says so itself
    check_address("auto")


def test_an_address_that_answers_but_is_no_ray_head_is_refused_in_seconds():
    """`--address HOST:8265` (the dashboard's URL, copied) or any web server: ray.init retried it for minutes with
    Ray's warnings (past 2 minutes on an HTTP server here). A Ray head's GCS answers HTTP/2, as gRPC does."""
    import http.server
    import socketserver
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    with socketserver.TCPServer(("127.0.0.1", 0), Quiet) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        port = web.server_address[1]
        try:
            with pytest.raises(UserError, match=rf"at '127.0.0.1:{port}': 127.0.0.1:{port} answers, but not as a Ray "
                                                r"head's GCS does \(a web server, the dashboard's port\?\)"):
                check_address(f"127.0.0.1:{port}")
        finally:
            web.shutdown()


def test_the_cluster_is_the_address_given_else_the_one_RAY_ADDRESS_names(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(None) is None and cluster_address("auto") == "auto"
    monkeypatch.setenv("RAY_ADDRESS", " 10.0.0.5:6379 ")
    assert cluster_address(None) == "10.0.0.5:6379" and cluster_address("ray://h:10001") == "ray://h:10001"
    monkeypatch.setenv("RAY_ADDRESS", "")
    assert cluster_address(None) is None


@pytest.mark.parametrize("parse, text, result", [
    (positive_int, "4", 4), (positive_int, "0", "must be >= 1, got 0"), (positive_int, "-2", "must be >= 1"),
    (positive_int, "2.5", "expected a whole number >= 1, got '2.5'"), (positive_int, "all", "whole number"),
    (non_negative_float, "0.5", 0.5), (non_negative_float, "0", 0.0), (non_negative_float, "-1", "got -1"),
    (non_negative_float, "nan", "finite"), (non_negative_float, "inf", "finite"),
    (non_negative_float, "one", "expected a number >= 0, got 'one'"),
])
def test_argument_types(parse, text, result):
    if isinstance(result, str):
        with pytest.raises(argparse.ArgumentTypeError, match=result):
            parse(text)
    else:
        assert parse(text) == result



def test_a_relative_path_in_a_working_directory_that_cannot_be_written_names_it(tmp_path, monkeypatch):
    """A container's working directory is often read-only: the example fix (the default, relative path) was the
    path that failed, and the folder was named by a temporary file's random name."""
    import autotune.preflight

    def read_only(dir: str) -> None:  # a container's read-only image (a folder of another user's: `blocking`)
        raise OSError(errno.EROFS, "Read-only file system", os.path.join(dir, "tmpr8pbzpfq"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(autotune.preflight.tempfile, "TemporaryFile", read_only)
    with pytest.raises(UserError) as raised:
        check_writable("lr_find.png", "--out", "--out lr_find.png")
    assert str(raised.value) == (
        f"--out 'lr_find.png' is not writable (Read-only file system: {tmp_path}); give a folder you can write, e.g. "
        f"--out lr_find.png, and run where you can write: a relative path is in the working directory, {tmp_path}")
    with pytest.raises(UserError, match=r"\(Read-only file system: /\S+/models\); give a folder you can write, e\.g\. "
                                        r"--set export.dir=models/x$"):
        check_writable(tmp_path / "models" / "x", "export.dir", "--set export.dir=models/x")
