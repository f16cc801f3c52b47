"""Child process for the kill-and-resume tests (run by tests/test_train_resume.py).

usage: python _train_child.py MODE CHECKPOINT OUT
MODE: straight (100 steps), kill (checkpoint at step 60, then blocks at step
65 until the parent SIGKILLs it), resume (resume=True to 100 steps).
"""

import sys
import time

import numpy as np

import gradcore
from gradcore import losses, nn, optim, tasks
from gradcore.optim import lr_scheduler


def build():
    model = nn.Sequential(nn.LastStep(nn.LSTM(2, 12, seed=0)), nn.Dense(12, 1, seed=1))
    opt = optim.Adam(model, lr=0.01)
    sched = lr_scheduler.StepLR(opt, step_size=30, gamma=0.5)
    mon = gradcore.GradMonitor(model)
    return model, opt, sched, mon


def main():
    mode, ckpt, out = sys.argv[1:4]
    model, opt, sched, mon = build()
    calls = [0]

    def loss(pred, y):
        calls[0] += 1
        if mode == "kill" and calls[0] > 65:
            print("blocked", flush=True)
            time.sleep(600)
        return losses.mse(pred, y)

    data = tasks.adding(T=20, batch_size=8, seed=3)
    kw = dict(loss=loss, optimizer=opt, steps=100, clip_norm=1.0, monitor=mon, scheduler=sched, progress=False)
    if mode == "straight":
        res = gradcore.train(model, data, **kw)
    elif mode == "kill":
        res = gradcore.train(model, data, checkpoint=ckpt, checkpoint_every=60, **kw)
    else:
        res = gradcore.train(model, data, checkpoint=ckpt, resume=True, **kw)
    h = mon.history
    np.savez(out, losses=res.losses, loss_steps=res.loss_steps, weights=model.arena.data,
             m=opt.m, v=opt.v, t=opt.t, lr=opt.lr, mon_step=h["step"], mon_grad=h["grad_norm"],
             resumed_from=-1 if res.resumed_from is None else res.resumed_from)


if __name__ == "__main__":
    main()
