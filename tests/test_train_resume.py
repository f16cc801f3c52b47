"""train() that can stop and go on: checkpoints, exact resume (also after a
SIGKILL), repeated calls, Ctrl-C, rollbacks, evaluation, schedules."""

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gradcore
from gradcore import checkpoint as ckpt_mod
from gradcore import losses, nn, optim, tasks
from gradcore.optim import lr_scheduler

HERE = os.path.dirname(os.path.abspath(__file__))


def _rnn_model():
    return nn.Sequential(nn.LastStep(nn.LSTM(2, 8, seed=0)), nn.Dense(8, 1, seed=1))


def _bn_model():
    return nn.MLP([3, 8, 2], activation="tanh", norm="batch", seed=0)


def _bn_data(n, nan_at=(), B=16, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = rng.normal(size=(B, 3)).astype(np.float32)
        y = rng.normal(size=(B, 2)).astype(np.float32)
        if i in nan_at:
            x[2, 1] = np.nan
        out.append((x, y))
    return out


# ----------------------------------------------------------------- resume
def _run_child(mode, ckpt, out, wait=True):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, os.path.join(HERE, "_train_child.py"), mode, str(ckpt), str(out)]
    if wait:
        subprocess.run(cmd, check=True, env=env, timeout=300)
        with np.load(out) as z:
            return {k: z[k] for k in z.files}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    straight = _run_child("straight", tmp_path / "unused.npz", tmp_path / "a.npz")
    ck = tmp_path / "run.npz"
    proc = _run_child("kill", ck, tmp_path / "never.npz", wait=False)
    try:
        assert proc.stdout.readline().strip() == "blocked"      # step 65, after the step-60 save
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    with np.load(ck, allow_pickle=False) as z:
        assert "model/0.rnn.weight_ih" in z.files
    assert ckpt_mod.peek(ck)["train"]["step"] == 60
    resumed = _run_child("resume", ck, tmp_path / "b.npz")
    assert int(resumed["resumed_from"]) == 60
    assert np.array_equal(resumed["loss_steps"], np.arange(60, 100))
    assert np.array_equal(resumed["losses"], straight["losses"][60:])          # bit-identical
    for k in ("weights", "m", "v", "t", "lr"):
        assert np.array_equal(resumed[k], straight[k]), k
    assert np.array_equal(resumed["mon_step"], np.arange(100))                  # monitor history continued
    assert np.array_equal(resumed["mon_grad"], straight["mon_grad"])


def test_checkpoint_resume_in_process_with_a_user_iterable(tmp_path):
    data = _bn_data(40)
    ref = _bn_model()
    r_ref = gradcore.train(ref, data, optimizer="adam", lr=0.01, progress=False)
    ck = tmp_path / "c.npz"
    a = _bn_model()
    r_a = gradcore.train(a, data[:25], optimizer="adam", lr=0.01, checkpoint=ck, checkpoint_every=10,
                         progress=False)
    assert r_a.steps == 25 and ckpt_mod.peek(ck)["train"]["step"] == 25     # saved at the end
    b = _bn_model()
    r_b = gradcore.train(b, data, optimizer="adam", lr=0.01, checkpoint=ck, resume=True, steps=40,
                         progress=False)
    assert r_b.resumed_from == 25 and r_b.first_step == 25 and r_b.steps == 15
    assert np.array_equal(r_b.losses, r_ref.losses[25:])
    for k, v in ref.state_dict().items():                                    # running stats too
        assert np.array_equal(b.state_dict()[k], v), k
    # nothing left to do: a resumed finished run takes no step
    r_c = gradcore.train(b, data, optimizer="adam", lr=0.01, checkpoint=ck, resume=True, steps=40,
                         progress=False)
    assert r_c.steps == 0 and r_c.global_step == 40


def test_resume_without_a_file_starts_fresh_and_errors_are_clear(tmp_path):
    m = _bn_model()
    r = gradcore.train(m, _bn_data(3), checkpoint=tmp_path / "new.npz", resume=True, progress=False)
    assert r.resumed_from is None and r.steps == 3 and (tmp_path / "new.npz").exists()
    with pytest.raises(ValueError, match="need checkpoint=PATH"):
        gradcore.train(m, _bn_data(1), resume=True)
    with pytest.raises(FileNotFoundError, match="checkpoint directory"):
        gradcore.train(m, _bn_data(1), checkpoint=tmp_path / "no" / "c.npz")
    gradcore.save(tmp_path / "plain.npz", m)
    with pytest.raises(gradcore.CheckpointError, match="not a checkpoint written by gradcore.train"):
        gradcore.train(_bn_model(), _bn_data(1), checkpoint=tmp_path / "plain.npz", resume=True)


def test_repeated_train_calls_continue_the_run():
    data = list(tasks.adding(T=10, batch_size=8, seed=1, n_batches=80))
    one = _rnn_model()
    mon1 = gradcore.GradMonitor(one)
    r1 = gradcore.train(one, data, optimizer="adam", lr=0.01, monitor=mon1, progress=False)
    two = _rnn_model()
    mon2 = gradcore.GradMonitor(two)
    first = gradcore.train(two, data[:30], optimizer="adam", lr=0.01, monitor=mon2, progress=False)
    second = gradcore.train(two, data[30:], optimizer="adam", lr=0.01, monitor=mon2, progress=False)
    assert second.optimizer is first.optimizer and second.optimizer.t == 80
    assert second.first_step == 30 and second.global_step == 80
    assert np.array_equal(np.concatenate([first.losses, second.losses]), r1.losses)
    assert np.array_equal(two.arena.data, one.arena.data)
    assert np.array_equal(mon2.history["step"], np.arange(80))
    assert np.array_equal(mon2.history["grad_norm"], mon1.history["grad_norm"])


# ----------------------------------------------------------------- Ctrl-C
def test_ctrl_c_returns_partial_result_and_saves(tmp_path):
    m = _bn_model()
    calls = [0]

    def loss(pred, y):
        calls[0] += 1
        if calls[0] == 7:
            signal.raise_signal(signal.SIGINT)       # Ctrl-C during step 6
        return losses.mse(pred, y)

    ck = tmp_path / "c.npz"
    r = gradcore.train(m, _bn_data(50), loss=loss, checkpoint=ck, progress=False)
    assert r.interrupted and not r.stopped and r.steps == 7 and r.global_step == 7
    assert "interrupted" in r.message
    assert ckpt_mod.peek(ck)["train"]["step"] == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler      # handler put back


def test_second_ctrl_c_aborts_the_step_and_keeps_the_last_complete_one():
    m = _bn_model()
    mon = gradcore.GradMonitor(m)
    calls = [0]
    saved = {}

    def loss(pred, y):
        calls[0] += 1
        if calls[0] == 4:
            saved.update(m.state_dict())
        if calls[0] == 5:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)       # the second one raises at once
        return losses.mse(pred, y)

    r = gradcore.train(m, _bn_data(50), loss=loss, monitor=mon, progress=False)
    assert r.interrupted and r.steps == 4 and r.global_step == 4
    assert len(mon) == 4 and np.array_equal(mon.history["step"], np.arange(4))


# ------------------------------------------------------------- rollbacks
def test_nan_stop_restores_batchnorm_statistics():
    m = _bn_model()
    r = gradcore.train(m, _bn_data(10, nan_at=(5,)), progress=False)
    assert r.stopped and r.stop_step == 5 and r.restored_step == 4
    for k, v in m.buffers().items():
        assert np.all(np.isfinite(v)), k
    m.eval()
    assert np.all(np.isfinite(m.forward(_bn_data(1)[0][0])))


def test_skip_mode_restores_batchnorm_statistics():
    m = _bn_model()
    r = gradcore.train(m, _bn_data(10, nan_at=(3,)), on_nonfinite="skip", progress=False)
    assert not r.stopped and r.steps == 9
    assert all(np.all(np.isfinite(v)) for v in m.buffers().values())


def test_rollback_with_lr_backoff_goes_on_and_finishes():
    m = _bn_model()
    mon = gradcore.GradMonitor(m)
    opt = optim.Adam(m, lr=0.02)
    r = gradcore.train(m, _bn_data(30, nan_at=(5, 12)), optimizer=opt, monitor=mon, on_nonfinite="rollback",
                       lr_backoff=0.5, max_rollbacks=3, progress=False)
    assert not r.stopped and r.global_step == 30 and r.steps == 28
    assert [rb["step"] for rb in r.rollbacks] == [5, 12]
    assert [rb["restored_step"] for rb in r.rollbacks] == [4, 11]
    assert opt.lr == pytest.approx(0.005)
    assert opt.t == 28                                   # the failed steps left no trace in Adam
    events = [e for e in mon.events if e.kind == "rollback"]
    assert [e.step for e in events] == [5, 12] and "learning rate now" in events[0].detail
    assert all(np.all(np.isfinite(v)) for v in m.state_dict().values())


def test_rollback_restores_the_optimizer_exactly():
    data = _bn_data(12, nan_at=(6,))
    a = _bn_model()
    oa = optim.Adam(a, lr=0.01)
    gradcore.train(a, data, optimizer=oa, on_nonfinite="rollback", lr_backoff=1.0, progress=False)
    b = _bn_model()
    ob = optim.Adam(b, lr=0.01)
    gradcore.train(b, data[:6] + data[7:], optimizer=ob, progress=False)
    assert np.array_equal(a.arena.data, b.arena.data) and np.array_equal(oa.m, ob.m)


def test_max_rollbacks_then_stops():
    m = _bn_model()
    r = gradcore.train(m, _bn_data(20, nan_at=(2, 4, 6)), on_nonfinite="rollback", max_rollbacks=2,
                       progress=False)
    assert r.stopped and r.stop_step == 6 and len(r.rollbacks) == 2
    assert all(np.all(np.isfinite(v)) for v in m.state_dict().values())


# ------------------------------------------------------------ evaluation
def test_eval_every_records_held_out_loss_at_another_batch_size():
    m = _rnn_model()
    train_data = tasks.adding(T=15, batch_size=8, seed=0, n_batches=20)
    x_ev, y_ev = next(tasks.adding(T=15, batch_size=3, seed=9))
    r = gradcore.train(m, train_data, optimizer="adam", lr=0.01, eval_data=(x_ev, y_ev), eval_every=5,
                       progress=False)
    assert np.array_equal(r.eval_steps, [4, 9, 14, 19])
    assert np.all(np.isfinite(r.eval_losses))
    expect = float(losses.mse(m.inference(x_ev), y_ev)[0])
    assert r.eval_losses[-1] == expect


def test_inference_between_forward_and_backward_changes_nothing():
    m = _rnn_model()
    x, y = next(tasks.adding(T=12, batch_size=8, seed=0))
    x_ev, _ = next(tasks.adding(T=12, batch_size=8, seed=5))        # same shape: the same buffers would be reused

    def grads(with_eval):
        m.zero_grad()
        L, d = losses.mse(m.forward(x), y)
        if with_eval:
            m.inference(x_ev)
            m.inference(x_ev[:5, :3])                              # another length and batch
        m.backward(d)
        return m.arena.grad.copy()

    assert np.array_equal(grads(False), grads(True))
    assert m.training and m._children["0"]._children["rnn"].training


def test_inference_uses_running_statistics_and_keeps_no_cache():
    m = _bn_model()
    gradcore.train(m, _bn_data(5), progress=False)
    x = _bn_data(1, B=4, seed=3)[0][0]
    y = m.inference(x)
    m.eval()
    assert np.array_equal(y, m.forward(x))
    m.train()
    rnn_model = _rnn_model()
    rnn = rnn_model._children["0"]._children["rnn"]
    rnn_model.inference(next(tasks.adding(T=50, batch_size=4, seed=0))[0])
    assert rnn._bufs is None and rnn._x is None


# ------------------------------------------------------------- schedules
def test_schedulers_match_torch():
    torch = pytest.importorskip("torch")
    cases = [(lr_scheduler.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=3, gamma=0.5)),
             (lr_scheduler.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR,
              dict(T_max=10, eta_min=0.001)),
             (lr_scheduler.LinearLR, torch.optim.lr_scheduler.LinearLR,
              dict(start_factor=0.25, end_factor=1.0, total_iters=4))]
    for ours, theirs, kw in cases:
        opt = optim.SGD(nn.Dense(2, 1, seed=0), lr=0.1)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        s, ts = ours(opt, **kw), theirs(topt, **kw)
        for _ in range(12):
            assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), ours.__name__
            topt.step()
            s.step()
            ts.step()


def test_scheduler_state_round_trip_and_errors():
    opt = optim.SGD(nn.Dense(2, 1, seed=0), lr=0.1)
    s = lr_scheduler.CosineAnnealingLR(opt, T_max=7)
    for _ in range(3):
        s.step()
    sd = {k: np.asarray(v) for k, v in s.state_dict().items()}
    opt2 = optim.SGD(nn.Dense(2, 1, seed=0), lr=0.1)
    s2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=99)
    s2.load_state_dict(sd)
    assert opt2.lr == opt.lr and s2.T_max == 7 and s2.last_epoch == 3
    bad = {"kind": "CosineAnnealingLR", "base_lr": 0.1, "last_epoch": 2, "step_size": 2, "gamma": 0.1}
    with pytest.raises(ValueError, match="'CosineAnnealingLR' scheduler"):
        lr_scheduler.StepLR(opt2, 2).load_state_dict(bad)
    with pytest.raises(KeyError, match="expected the entries"):
        lr_scheduler.StepLR(opt2, 2).load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt2, 0)


def test_scheduler_in_train_is_stepped_and_saved(tmp_path):
    data = _bn_data(20)
    a = _bn_model()
    oa = optim.SGD(a, lr=0.1)
    sa = lr_scheduler.StepLR(oa, step_size=5, gamma=0.5)
    gradcore.train(a, data, optimizer=oa, scheduler=sa, progress=False)
    assert oa.lr == pytest.approx(0.1 * 0.5 ** 4) and sa.last_epoch == 20
    ck = tmp_path / "s.npz"
    b = _bn_model()
    ob = optim.SGD(b, lr=0.1)
    gradcore.train(b, data[:8], optimizer=ob, scheduler=lr_scheduler.StepLR(ob, step_size=5, gamma=0.5),
                   checkpoint=ck, progress=False)
    c = _bn_model()
    oc = optim.SGD(c, lr=0.1)
    sc = lr_scheduler.StepLR(oc, step_size=5, gamma=0.5)
    gradcore.train(c, data, optimizer=oc, scheduler=sc, checkpoint=ck, resume=True, steps=20, progress=False)
    assert sc.last_epoch == 20 and oc.lr == oa.lr
    assert np.array_equal(c.arena.data, a.arena.data)
    with pytest.raises(ValueError, match="scheduler"):
        gradcore.train(_bn_model(), data, checkpoint=ck, resume=True, progress=False)


# ------------------------------------------------------ one norm per step
def test_gradient_norm_is_computed_once_per_step_without_monitor(monkeypatch):
    train_mod = sys.modules["gradcore.train"]

    m = _bn_model()
    opt = optim.SGD(m, lr=0.05)
    counts = {"grad_norm": 0, "grad_stats_on_grads": 0}
    real_norm, real_stats = opt.grad_norm, train_mod.grad_stats

    def grad_norm():
        counts["grad_norm"] += 1
        return real_norm()

    def grad_stats(arrays):
        if any(np.shares_memory(v, m.arena.grad) for v in arrays.values()):
            counts["grad_stats_on_grads"] += 1
        return real_stats(arrays)

    monkeypatch.setattr(opt, "grad_norm", grad_norm)
    monkeypatch.setattr(train_mod, "grad_stats", grad_stats)
    r = gradcore.train(m, _bn_data(6), optimizer=opt, clip_norm=0.5, progress=False)
    assert counts == {"grad_norm": 6, "grad_stats_on_grads": 0}
    ref = _bn_model()
    r_ref = gradcore.train(ref, _bn_data(6), optimizer=optim.SGD(ref, lr=0.05), clip_norm=0.5,
                           monitor=gradcore.GradMonitor(ref), progress=False)
    assert np.array_equal(r.grad_norms, r_ref.grad_norms) and np.array_equal(m.arena.data, ref.arena.data)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_inference_of_a_bare_recurrent_layer_returns_its_tuple_as_new_arrays(cls):
    layer = cls(3, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    got = layer.inference(x)
    want = layer.forward(x)
    flat = lambda r: [a for part in r for a in (part if isinstance(part, tuple) else (part,))]  # noqa: E731
    assert type(got) is tuple and len(got) == len(want)
    for g, w in zip(flat(got), flat(want)):
        assert np.array_equal(g, w) and not np.shares_memory(g, w)
