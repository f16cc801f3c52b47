"""_kernels.pyi states the kernel-level contract: both backends (the C
binding and the NumPy reference) define each name it lists, with the same
parameter names, order and defaults."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import gradcore
import gradcore.reference as reference
from gradcore import _kernels

STUB = Path(gradcore.__file__).with_name("_kernels.pyi")
C_ONLY = {"KernelError", "simd_name", "simd_level", "cpu_has_avx2", "cpu_has_avx512", "set_simd"}


def _stub():
    tree = ast.parse(STUB.read_text())
    funcs, classes, names = {}, {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            funcs[node.name] = node
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if not node.target.id.startswith("_"):
                names.add(node.target.id)
    return funcs, classes, names


FUNCS, CLASSES, CONSTANTS = _stub()
PUBLIC = set(FUNCS) | set(CLASSES) | CONSTANTS


def _params(node):
    """(name, default or inspect._empty) of a stub function, self dropped."""
    a = node.args
    pos = a.posonlyargs + a.args
    defaults = [inspect.Parameter.empty] * (len(pos) - len(a.defaults)) + [
        ast.literal_eval(d) for d in a.defaults]
    out = [(p.arg, d) for p, d in zip(pos, defaults)]
    out += [(p.arg, inspect.Parameter.empty if d is None else ast.literal_eval(d))
            for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    return [p for p in out if p[0] != "self"]


def _sig(obj):
    return [(p.name, p.default) for p in inspect.signature(obj).parameters.values()
            if p.name != "self"]


BACKENDS = [pytest.param(_kernels, id="c"), pytest.param(reference, id="numpy")]


def test_stub_lists_every_public_name():
    assert PUBLIC - C_ONLY == set(reference.__all__)
    c_public = {n for n in dir(_kernels) if not n.startswith("_")} - {"np", "describe"}
    assert c_public == PUBLIC


@pytest.mark.parametrize("mod", BACKENDS)
@pytest.mark.parametrize("name", sorted(set(FUNCS) - C_ONLY))
def test_function_signature_matches_stub(mod, name):
    assert _sig(getattr(mod, name)) == _params(FUNCS[name])


@pytest.mark.parametrize("mod", BACKENDS)
@pytest.mark.parametrize("method", sorted(CLASSES["BufferList"]))
def test_bufferlist_methods_match_stub(mod, method):
    stub = _params(CLASSES["BufferList"][method])
    if method == "__init__" and mod is _kernels:
        # a cdef class's constructor has no introspectable signature: call it
        # with every stub parameter by keyword instead (a wrong name raises)
        kw = {n: ([np.zeros(3)] if d is inspect.Parameter.empty else d) for n, d in stub}
        assert len(mod.BufferList(**kw)) == 1
        return
    assert _sig(getattr(mod.BufferList, method)) == stub


def test_c_only_functions_match_stub():
    for name in C_ONLY - {"KernelError"}:
        assert _sig(getattr(_kernels, name)) == _params(FUNCS[name])
    assert issubclass(_kernels.KernelError, RuntimeError)


@pytest.mark.parametrize("mod", BACKENDS)
def test_constants_match(mod):
    for name in CONSTANTS:
        assert getattr(mod, name) == getattr(_kernels, name)
        assert isinstance(getattr(mod, name), tuple)
