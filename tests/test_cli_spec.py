"""The study commands' flags come from the experiments: every default is the
experiment function's, and ``gradcore --help`` imports no experiment."""

import inspect
import subprocess
import sys

import pytest

from gradcore.cli import COMMANDS, build_parser
from gradcore.cli.studies import STUDIES, spec


@pytest.mark.parametrize("command", list(STUDIES))
def test_flag_defaults_are_the_signature_defaults(command):
    cmd = spec(command)
    args = build_parser([command]).parse_args([command])
    sig = inspect.signature(cmd.run).parameters
    assert cmd.args, command
    for a in cmd.args:
        want = sig[a.param].default
        want = list(want) if isinstance(want, tuple) else want
        assert getattr(args, a.param) == want, (command, a.param)


def test_a_changed_signature_default_changes_the_flag(monkeypatch):
    import gradcore.experiments.depth as depth

    def depth_sweep(depth=7, width=512, inits=("he",), activations=("relu",), batch=64, seed=0,
                    dtype="float64"):
        raise AssertionError("not run")

    monkeypatch.setattr(depth, "CLI", depth.CLI._replace(run=depth_sweep))
    args = build_parser(["depth"]).parse_args(["depth"])
    assert args.depth == 7 and args.inits == ["he"] and args.activations == ["relu"]


def test_every_command_has_help_and_top_level_help_imports_no_experiment():
    assert all(c.help for c in COMMANDS.values())
    code = ("import sys\nfrom gradcore.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('gradcore.experiments', 'gradcore.tasks'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
