"""`autotune --help` and each command's `--help`: they fit the terminal, and every example can be pasted as shown."""
from __future__ import annotations

import shlex

import pytest

from autotune.cli import COMMANDS, build_parser
from autotune.cli.common import fitted_text


def _help(command: str | None, columns: int, monkeypatch) -> str:
    """The help `autotune [COMMAND] --help` prints in a terminal `columns` wide."""
    monkeypatch.setenv("COLUMNS", str(columns))
    parser = build_parser()
    if command is None:
        return parser.format_help()
    return parser._subparsers._group_actions[0].choices[command].format_help()


def _examples(text: str) -> list[str]:
    """The commands of the `examples:` section as a shell reads them when pasted: ` \\` joins lines, and a comment
    beside a command (two spaces or more away) or on the lines below it is left out."""
    lines = text.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    commands: list[str] = []
    continued = False
    for line in lines:
        if continued:
            commands[-1] = commands[-1][:-1] + line.strip().split("  ")[0]
        elif line.startswith("  ") and not line.startswith("   "):
            commands.append(line.strip().split("  ")[0])
        continued = commands[-1].endswith("\\")
    return commands


COMMAND_NAMES = [None, *COMMANDS]


@pytest.mark.parametrize("command", COMMAND_NAMES)
def test_help_fits_80_columns(command, monkeypatch):
    """The descriptions and examples were written 120 columns wide and printed raw: in an 80-column terminal the
    lines of `autotune --help` and of every command's help wrapped in the middle of words and examples."""
    lines = _help(command, 80, monkeypatch).splitlines()
    assert [line for line in lines if len(line) > 80] == []


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize("command", COMMAND_NAMES)
def test_every_example_parses_as_pasted(command, columns, monkeypatch):
    """An example whose comment stood one space after it (`autotune ls recipes my_recipe.py the keys of ...`,
    `autotune run ... --set search.trials=50 more trials`) gave its comment as arguments when pasted."""
    examples = _examples(_help(command, columns, monkeypatch))
    assert examples
    parser = build_parser()
    for example in examples:
        for part in example.split(" | "):
            words = shlex.split(part)
            if words[0] == "autotune":
                _, extra = parser.parse_known_args(words[1:])
                assert extra == [], example


def test_examples_are_kept_as_written_where_they_fit():
    text = "examples:\n  autotune ls          the kinds\n  autotune ls models   registered models\n"
    assert fitted_text(text, 40) == text.splitlines()


def test_a_long_example_is_continued_and_its_comment_goes_below():
    text = "examples:\n  autotune check a.yaml --set train.epochs=3 --set 'model.x={uniform: [0, 1]}'  checks\n"
    assert fitted_text(text, 50) == [
        "examples:",
        "  autotune check a.yaml --set train.epochs=3 \\",
        "    --set 'model.x={uniform: [0, 1]}'",
        "      checks",
    ]


def test_prose_is_reflowed_and_a_sentence_ending_a_line_ends_it():
    text = "One two three four five six seven\neight nine.\nTen eleven."
    assert fitted_text(text, 20) == ["One two three four", "five six seven eight", "nine.", "Ten eleven."]


def test_an_option_name_is_not_split_at_its_hyphens(monkeypatch):
    """At 60 columns `autotune run --help` printed `--no-` at the end of a line and `export` on the next."""
    text = _help("run", 60, monkeypatch)
    assert [line for line in text.splitlines() if line.endswith("-")] == []
    assert "not with --no-export" in " ".join(text.split())


def test_train_says_its_space_may_be_an_exported_model(monkeypatch):
    """`autotune train models/digits` is one of its examples, but SPACE was only "the search space YAML file"."""
    text = " ".join(_help("train", 80, monkeypatch).split())
    assert "SPACE the search space YAML file, or an exported model (its folder or its model.json)" in text


def test_run_names_its_values_as_the_other_commands_do(monkeypatch):
    """`autotune run --help` showed `[--storage STORAGE] [--num-cpus NUM_CPUS] [--num-gpus NUM_GPUS]` where the other
    commands say DIR and N, and opened with its module's docstring, "`autotune run SPACE`: validate, ..."."""
    text = " ".join(_help("run", 80, monkeypatch).split())
    assert "[--storage DIR] [--address ADDRESS] [--num-cpus N] [--num-gpus N]" in text
    assert " SPACE Run a search: validate the space, " in text


@pytest.mark.parametrize("command", ["predict", "serve"])
def test_model_dir_is_a_folder_with_an_example(command, monkeypatch):
    """MODEL_DIR was "an exported model directory" with no example, where RUN_DIR is "the run's folder, e.g.
    runs/digits" and the errors speak of "the folder of an exported model (e.g. models/digits, ...)"."""
    text = " ".join(_help(command, 80, monkeypatch).split())
    assert "MODEL_DIR the folder of an exported model, e.g. models/digits (model.json and the files" in text


def test_no_command_prints_the_help_on_stderr_and_exits_2(capsys):
    """`autotune` alone printed its help on stdout and exited 2: a script's `out=$(autotune $cmd)` with an empty
    `$cmd` captured 60 lines of help as the command's output. It is a usage error, as argparse, click (ray) and docker
    treat it: the help goes to stderr, where a person still reads it, and stdout stays empty."""
    import autotune.cli

    assert autotune.cli.main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: autotune") and "examples:" in err


def test_building_every_command_s_parser_imports_neither_the_engine_nor_ray_nor_torch():
    """The CLI imports each command's module for its parser, whatever the command: a module that imported the
    engine at its top (the summary's table, check's column widths) made `autotune predict` and every other command
    load autotune.engine. Each heavy import belongs where the command runs."""
    import subprocess
    import sys

    code = ("import sys; from autotune.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'torch', 'optuna', 'pandas') "
            "or m.startswith('autotune.engine')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
