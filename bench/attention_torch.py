"""attention_torch.py — the PyTorch 1.13 side of bench/attention: the same shapes, programs and
timing as build/bench/attention, printed in the same rows. PyTorch 1.13 has no fused attention
(no scaled_dot_product_attention), so it runs the plain spelling: matmul(q, k^T) * scale,
masked_fill(-inf) above the diagonal when causal, softmax, matmul(v); forward under no_grad,
forward + backward by autograd (the gradients of q, k, v of sum(out * R)).

Timing as bench/attention.c: a warm-up call (a second when the first is short), then REPS single
calls (as many as fit in --budget, >= 3; 2 when one call is longer), their median, min and max;
a shape whose warm-up and 2 calls would take longer than --max-seconds, estimated from the
GFLOP/s of the same kind at the largest smaller S (measured here or read from --history), is
skipped, and so is one whose [S,S]
tensors would exceed --max-gib (estimated as FWD_SS forward, FWDBWD_SS forward + backward
tensors of BH*S*S floats: the growth of the peak RSS measured at BH=8, S=2048, D=64 was 2.3 and
3.4 of them, causal or not).

usage: /usr/bin/python3 bench/attention_torch.py [flags]   (bench/attention_vs_torch.sh runs it
  in bench/torch_env.sh's configurations); --help lists the flags."""
import argparse
import math
import statistics
import sys
import time

import torch

MIN_REPS, MAX_REPS = 3, 200
FWD_SS, FWDBWD_SS = 2.5, 3.5  # [BH,S,S] tensors of the peak memory (see the docstring)
MODES, VARIANT_OF = ("fwd", "fwdbwd"), "torch"


def int_list(flag, names=None):
    """An argparse type: comma-separated positive integers (or indices of names)."""

    def parse(arg):
        out = []
        for word in arg.split(","):
            if names is not None:
                if word not in names:
                    raise argparse.ArgumentTypeError(f"'{word}' is not one of {', '.join(names)}")
                out.append(names.index(word))
            elif not word.isdigit() or int(word) < 1:
                raise argparse.ArgumentTypeError(f"'{word}' is not a positive integer")
            else:
                out.append(int(word))
        return out

    parse.__name__ = flag
    return parse


def positive_int(arg):
    if not arg.isdigit() or int(arg) < 1:
        raise argparse.ArgumentTypeError(f"'{arg}' is not a positive integer")
    return int(arg)


def positive(arg):
    try:
        v = float(arg)
    except ValueError:
        v = -1.0
    if not v > 0 or math.isinf(v):
        raise argparse.ArgumentTypeError(f"'{arg}' is not a positive number")
    return v


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch side of bench/attention (same flags)")
    ap.add_argument("--mode", type=int_list("mode", list(MODES)), default=[0, 1], help="fwd, fwdbwd")
    ap.add_argument("--causal", type=int_list("causal", ["0", "1"]), default=[0, 1])
    ap.add_argument("--bh", type=int_list("bh"), default=[8, 32], help="batch x heads (B = 1, H = BH)")
    ap.add_argument("--s", type=int_list("s"), default=[49, 196, 256, 1024, 4096], help="Sq = Sk")
    ap.add_argument("--d", type=int_list("d"), default=[32, 64], help="D = Dv")
    ap.add_argument("--threads", type=positive_int, default=2, help="torch.set_num_threads")
    ap.add_argument("--budget", type=positive, default=0.3, help="seconds of timed calls per shape, about")
    ap.add_argument("--max-seconds", type=positive, default=30.0, help="skip a longer shape (see above)")
    ap.add_argument("--max-gib", type=positive, default=8.0, help="skip a shape with more [S,S] tensors")
    ap.add_argument("--history", type=argparse.FileType("r"), default=None,
                    help="rows of this table from earlier runs: their GFLOP/s count for --max-seconds")
    ap.add_argument("--config", default="", help="the torch_env.sh configuration, for the variant column")
    ap.add_argument("--peak", type=positive, default=None, help="the FMA peak in GFLOP/s, for %%peak")
    return ap.parse_args()


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def flops(mode, causal, bh, s, d):
    f = 4.0 * bh * s * s * d * (0.5 if causal else 1.0)
    return 3.5 * f if mode == 1 else f


def program(mode, causal, bh, s, d):
    """A function running one call of the program; its inputs U(-1, 1), fixed per shape."""
    gen = torch.Generator().manual_seed(1)
    q, k, v, r = (torch.rand(1, bh, s, d, generator=gen) * 2 - 1 for _ in range(4))
    scale = 1.0 / math.sqrt(d)
    mask = torch.ones(s, s, dtype=torch.bool).triu(1) if causal else None

    def attention(q, k, v):
        logits = torch.matmul(q, k.transpose(-1, -2)) * scale
        if mask is not None:
            logits = logits.masked_fill(mask, float("-inf"))
        return torch.matmul(torch.softmax(logits, -1), v)

    if mode == 0:

        def fwd():
            with torch.no_grad():
                return attention(q, k, v)

        return fwd
    for t in (q, k, v):
        t.requires_grad_(True)

    def fwd_bwd():
        loss = (attention(q, k, v) * r).sum()
        return torch.autograd.grad(loss, [q, k, v])

    return fwd_bwd


def time_calls(fn, budget):
    def once():
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    first = once()
    if first < 0.1:
        first = once()
    reps = 2 if first > budget else min(MAX_REPS, max(MIN_REPS, int(budget / first)))
    t = [once() for _ in range(reps)]
    return reps, statistics.median_high(t), min(t), max(t)


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    variant = f"{VARIANT_OF}:{a.config}" if a.config else VARIANT_OF
    rates = {}  # (mode, causal, bh, d) -> (S, GFLOP/s) at the largest S measured
    for row in (line.split() for line in (a.history or [])):
        if len(row) >= 11 and row[0] in MODES and row[5] == variant and row[6].isdigit():
            kind, s, gf = (MODES.index(row[0]), int(row[1]), int(row[2]), int(row[4])), int(row[3]), float(row[10])
            if kind not in rates or rates[kind][0] <= s:
                rates[kind] = (s, gf)
    print(f"# PyTorch {torch.__version__} attention (matmul, scale, masked_fill, softmax, matmul; autograd); "
          f"{torch.get_num_threads()} threads; configuration '{a.config or 'as started'}'")
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; "
          f"load average {loadavg()} at the start")
    print(f"{'mode':<7} {'causal':>6} {'bh':>5} {'S':>6} {'D':>4} {'variant':<13} {'reps':>4} {'med ms':>9} "
          f"{'min ms':>9} {'max ms':>9} {'GFLOP/s':>8} {'%peak':>6} {'arena MiB':>9} {'unf/fus':>7} {'max|d|':>9}  steps",
          flush=True)
    for mode in a.mode:
        for causal in a.causal:
            for bh in a.bh:
                for d in a.d:
                    for s in a.s:
                        key = f"{MODES[mode]:<7} {causal:>6} {bh:>5} {s:>6} {d:>4} {variant:<13}"
                        f = flops(mode, causal, bh, s, d)
                        known = rates.get((mode, causal, bh, d))
                        if known and known[0] < s and 3 * f / (known[1] * 1e9) > a.max_seconds:
                            print(f"{key} skipped: about {f / (known[1] * 1e9):.1f} s a call ({known[1]:.2f} "
                                  f"GFLOP/s at S={known[0]}); warm-up + 2 calls > --max-seconds {a.max_seconds:g}",
                                  flush=True)
                            continue
                        gib = (FWDBWD_SS if mode else FWD_SS) * bh * s * s * 4 / 2**30
                        if gib > a.max_gib:
                            print(f"{key} skipped: needs about {gib:.1f} GiB of [S,S] tensors > --max-gib "
                                  f"{a.max_gib:g}", flush=True)
                            continue
                        reps, med, lo, hi = time_calls(program(mode, causal, bh, s, d), a.budget)
                        gf = f / med * 1e-9
                        if not known or known[0] <= s:
                            rates[(mode, causal, bh, d)] = (s, gf)
                        peak = f"{100 * gf / a.peak:5.1f}%" if a.peak else "-"
                        print(f"{key} {reps:>4} {med * 1e3:9.3f} {lo * 1e3:9.3f} {hi * 1e3:9.3f} {gf:8.1f} "
                              f"{peak:>6} {'-':>9} {'-':>7} {'-':>9}  torch {torch.__version__}", flush=True)
    print(f"# load average {loadavg()} at the end")


if __name__ == "__main__":
    sys.exit(main())
