"""cnn_torch.py — PyTorch 1.13 side of bench/cnn_vs_torch.sh and bench/cnn_run_vs_torch.sh:
trains disco's fmnist-cnn (models/fmnist_cnn.c) on Fashion-MNIST with the same batch, init
scheme (kaiming normal convs and linears, zero biases, group norm ones/zeros), AdamW, warmup +
cosine schedule, clipping by global norm, parameter EMA and a new data order every epoch.

Throughput mode (the default) trains STEPS-1 steps (default 56) and prints the images/s of the
steps after the first WARMUP (the same window disco's trainer reports: steps WARMUP+1 ..
STEPS-1). --eval does the whole run of `disco train fmnist-cnn`: loads the data, trains STEPS
steps (default 700, disco's), evaluates the 10k test images in batches of 500 under no_grad
with the EMA params and then the raw ones, and prints both accuracies in disco's words, the
training, evaluation and whole wall times and the peak resident memory (ru_maxrss).

usage: /usr/bin/python3 bench/cnn_torch.py --layout nchw|channels_last [--eval] [--steps N]
       [--warmup W] [--batch B] [--threads T] [--data DIR]
Run it as cnn_vs_torch.sh does: OPENBLAS_NUM_THREADS=1, OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset."""
import time

T_START = time.perf_counter()  # before the imports: --eval's wall time counts importing torch

import argparse
import gzip
import math
import os
import resource
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# disco's fmnist-cnn defaults (models/fmnist_cnn.c)
LR, LR_WARMUP, B1, B2, EPS, WD, CLIP, EMA = 2e-3, 50, 0.9, 0.999, 1e-8, 1e-4, 1.0, 0.995
GN_GROUPS = 8
STEPS, EVAL_STEPS, EVAL_BATCH = 56, 700, 500  # throughput mode's steps; disco's default steps, EVAL_BATCH


def optimizer_step(loss, opt, params, clip, ema, ema_decay):
    """The trainer's step after the forward pass: backward, clipping to a global norm of clip,
    the optimizer's step, then ema <- ema_decay ema + (1 - ema_decay) params"""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    with torch.no_grad():
        torch._foreach_mul_(ema, ema_decay)
        torch._foreach_add_(ema, [p.detach() for p in params], alpha=1 - ema_decay)


def load_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_set(data, prefix):
    """x f32[N,1,28,28] in [0,1], y i64[N] of the idx files PREFIX-{images,labels}"""
    images = load_idx(os.path.join(data, prefix + "-images-idx3-ubyte.gz"), 16)
    labels = load_idx(os.path.join(data, prefix + "-labels-idx1-ubyte.gz"), 8)
    return (torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28),
            torch.from_numpy(labels.astype(np.int64)))


class Cnn(nn.Module):
    """x [B,1,28,28] -> logits [B,10]; the layers of models/fmnist_cnn.c."""

    def __init__(self):
        super().__init__()
        self.c1, self.n1 = nn.Conv2d(1, 32, 3, padding=1), nn.GroupNorm(GN_GROUPS, 32)
        self.c2, self.n2 = nn.Conv2d(32, 32, 3, padding=1), nn.GroupNorm(GN_GROUPS, 32)
        self.c3, self.n3 = nn.Conv2d(32, 64, 3, padding=1), nn.GroupNorm(GN_GROUPS, 64)
        self.fc1, self.fc2 = nn.Linear(7 * 7 * 64, 128), nn.Linear(128, 10)
        for m in (self.c1, self.c2, self.c3, self.fc1, self.fc2):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def forward(self, x):
        h = F.silu(self.n1(self.c1(x)))
        h = F.avg_pool2d(F.silu(self.n2(self.c2(h))), 2)
        h = F.avg_pool2d(F.silu(self.n3(self.c3(h))), 2)
        h = F.silu(self.fc1(torch.flatten(h, 1)))
        return self.fc2(h)


def lr_at(step, steps, warmup):
    """disco's dc_lr_at with min_lr_ratio 0"""
    if step < warmup:
        return LR * (step + 1) / warmup
    span = max(1, steps - warmup)
    return LR * 0.5 * (1 + math.cos(math.pi * (step - warmup) / span))


@torch.no_grad()
def accuracy(model, x_all, y_all, fmt):
    """the fraction of the test set classified right, in whole batches of EVAL_BATCH as disco's
    dc_classifier_accuracy"""
    right = seen = 0
    for b in range(0, x_all.shape[0] - EVAL_BATCH + 1, EVAL_BATCH):
        logits = model(x_all[b:b + EVAL_BATCH].contiguous(memory_format=fmt))
        right += (logits.argmax(1) == y_all[b:b + EVAL_BATCH]).sum().item()
        seen += EVAL_BATCH
    return right / seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layout", choices=["nchw", "channels_last"], required=True)
    ap.add_argument("--eval", action="store_true")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=os.environ.get("DISCO_FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    if a.steps is None:
        a.steps = EVAL_STEPS if a.eval else STEPS
    if a.eval and a.steps < 1:
        ap.error("--steps must be at least 1")
    if not a.eval and a.steps < a.warmup + 2:
        ap.error("--steps must be at least --warmup + 2")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x_all, y_all = load_set(a.data, "train")
    if a.eval:
        x_test, y_test = load_set(a.data, "t10k")
    fmt = torch.channels_last if a.layout == "channels_last" else torch.contiguous_format
    model = Cnn().to(memory_format=fmt)
    params = list(model.parameters())
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=LR, betas=(B1, B2), eps=EPS, weight_decay=WD)
    gen = torch.Generator().manual_seed(a.seed)
    per_epoch = x_all.shape[0] // a.batch
    lr_warmup = min(LR_WARMUP, a.steps // 10)  # disco's --steps cuts the lr warmup to steps/10
    t0 = time.perf_counter()
    t1 = None
    for s in range(a.steps if a.eval else a.steps - 1):
        if s == a.warmup:
            t1 = time.perf_counter()
        if s % per_epoch == 0:
            perm = torch.randperm(x_all.shape[0], generator=gen)
        idx = perm[(s % per_epoch) * a.batch:(s % per_epoch + 1) * a.batch]
        x = x_all[idx].contiguous(memory_format=fmt)
        y = y_all[idx]
        for g in opt.param_groups:
            g["lr"] = lr_at(s, a.steps, lr_warmup)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        optimizer_step(loss, opt, params, CLIP, ema, EMA)
    if a.eval:
        t2 = time.perf_counter()
        raw = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, e in zip(params, ema):
                p.copy_(e)
        acc_ema = accuracy(model, x_test, y_test, fmt)
        with torch.no_grad():
            for p, r in zip(params, raw):
                p.copy_(r)
        acc = accuracy(model, x_test, y_test, fmt)
        t3 = time.perf_counter()
        print(f"torch {torch.__version__} {a.layout}: trained steps 1..{a.steps} in {t2 - t0:.2f} s "
              f"(loss {loss.item():.4f}); evaluated {x_test.shape[0]} test images twice in {t3 - t2:.2f} s")
        print(f"accuracy of the EMA params {acc_ema:.4f}")
        print(f"test accuracy {acc:.4f}")
        print(f"wall {t3 - T_START:.2f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB")
        return 0
    dt = time.perf_counter() - t1
    timed = a.steps - 1 - a.warmup
    print(f"torch {torch.__version__} {a.layout}: steps {a.warmup + 1}..{a.steps - 1} loss {loss.item():.4f} "
          f"{timed * a.batch / dt:.1f} images/s ({dt:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
