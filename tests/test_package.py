"""Package conventions: lazy submodules, typing marker, exported symbols."""

import pathlib
import subprocess
import sys

import gradcore

LAZY = ("experiments", "tasks", "interop", "reference", "cli", "doctor")


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_submodules_are_lazy_attributes():
    out = _run("import sys, gradcore; print(sorted(m for m in sys.modules if m.startswith(('gradcore.', 'torch'))))")
    # gradcore.interop itself is light (the torch state-dict mapping the layers use); its torch part is not loaded
    for name in [n for n in LAZY if n != "interop"] + ["interop.torch"]:
        assert f"'gradcore.{name}'" not in out, f"gradcore.{name} is imported by `import gradcore`"
    assert "'torch'" not in out
    out = _run("import gradcore; print(gradcore.experiments.__name__, gradcore.tasks.__name__)")
    assert out.split() == ["gradcore.experiments", "gradcore.tasks"]


def test_unknown_attribute_still_raises():
    try:
        gradcore.no_such_thing
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def test_dir_lists_lazy_submodules():
    assert set(LAZY) <= set(dir(gradcore))
    assert set(LAZY) <= set(gradcore.__all__)


def test_py_typed_marker():
    assert (pathlib.Path(gradcore.__file__).parent / "py.typed").is_file()


def test_extension_exports_only_module_init():
    import shutil

    import pytest

    from gradcore import _kernels

    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not installed")
    out = subprocess.run([nm, "-D", "--defined-only", _kernels.__file__], capture_output=True, text=True,
                         check=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.split() and line.split()[-2] in "TDBRVW"]
    assert "PyInit__kernels" in names
    assert [n for n in names if n.startswith("gc_")] == [], "C kernels are exported from the extension"
