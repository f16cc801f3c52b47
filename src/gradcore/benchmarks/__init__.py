"""gradcore's benchmark workloads, shipped with the package.

Each ``workloads_<group>.py`` (groups ``clip``, ``dense``, ``doctor``,
``lab``, ``mlp``, ``rnn``, ``torch``, ...) builds the same computation with
gradcore, the NumPy reference backend and, when they are installed,
PyTorch / JAX / optax; the contract is in ``_common.py``. Two ways to run
them, each pinned to one thread per library and saying so:

- the ratio report (one interleaved run, targets checked)::

      gradcore bench --group clip --json clip.json
      python -m gradcore.benchmarks --group clip

- pytest-benchmark groups (``pip install "gradcore[bench]"``)::

      python -m pytest --pyargs gradcore.benchmarks --benchmark-enable -k clip-small
      python -m pytest --pyargs gradcore.benchmarks.workloads_clip --benchmark-enable

Peers that are not installed are left out and named (a skipped parameter
with the reason under pytest). Nothing here runs on import.
"""
