"""Messages name a run's options as the caller gives them: `autotune run`'s flags, or `autotune.fit`'s keywords."""
from __future__ import annotations

import re

import pytest

import autotune
from autotune.engine.storage import check_choice, run_location
from autotune.errors import UserError
from autotune.run_options import from_command_line, option


@pytest.mark.parametrize("name, value, python, command_line", [
    ("resume", None, "resume=True", "--resume"),
    ("if_data_changed", None, "if_data_changed=True", "--if-data-changed"),
    ("num_cpus", None, "num_cpus", "--num-cpus"),
    ("num_cpus", 2, "num_cpus=2", "--num-cpus 2"),
    ("storage", "runs", "storage='runs'", "--storage runs"),
    ("overrides", "name=x", "overrides=['name=x']", "--set name=x"),
])
def test_an_option_is_named_as_its_caller_gives_it(name, value, python, command_line):
    assert option(name, value) == python
    with from_command_line():
        assert option(name, value) == command_line
    assert option(name, value) == python  # only inside the block


def test_a_refusal_names_fit_s_keyword_in_python_and_the_flag_on_the_command_line(tmp_path):
    space = autotune.load_space({"name": "x", "data": {"dataset": "digits"}})
    where = run_location(str(tmp_path), "x")  # no run there
    with pytest.raises(UserError, match=r"; run without resume=True to start it$"):
        check_choice(space, where, resume=True, restart=False)
    with from_command_line(), pytest.raises(UserError, match=r"; run without --resume to start it$"):
        check_choice(space, where, resume=True, restart=False)


@pytest.mark.parametrize("options, words", [
    ({"resume": True}, "resume=True with if_data_changed=True: a retrain resumes its own interrupted search by itself"),
    ({"export": False}, "export=False with if_data_changed=True: a retrain exports and fingerprints its model"),
])
def test_fit_refuses_what_a_retrain_would_silently_override(options, words):
    """From Python as on the command line (`test_command_inputs.py`), before the space is read: `resume=True` with
    `if_data_changed=True` started a fresh search where no retrain run existed."""
    with pytest.raises(UserError, match=re.escape(words)):
        autotune.fit("not read.yaml", if_data_changed=True, **options)
