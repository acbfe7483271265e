"""fusion_torch.py — PyTorch 1.13 eager side of bench/fusion: times the blocks that bench/fusion.c
compiles with disco's JIT, on the same shapes and thread count, and prints one line per block,
`RESULT INDEX MEDIAN_MS BEST_MS`: the median over REPS repetitions of the time of one call (a
repetition runs the block enough times to last >= 20 ms), and the fastest single call.

usage: /usr/bin/python3 bench/fusion_torch.py --threads T --reps R SPEC...
  SPEC is KIND:DIMS with DIMS as AxBxC; KIND is
    gn_silu:NxHxWxC:G  silu(group_norm(x, G groups)) (torch runs it on NCHW, its native layout)
    gn_silu_bwd:NxHxWxC:G  the same forward, then the gradients of x, gamma and beta for an
                       incoming gradient dy (autograd)
    layer_norm:RxC     layer_norm over the last dim (scale and bias)
    softmax:RxC        softmax over the last dim
    add4:N             a + b + c + d
    gelu:N             gelu, tanh form (disco's)
    adamw:S1,S2,...    torch.optim.AdamW.step() over params of shapes S1, S2, ... (each AxB..)
                       plus an EMA of each param (e = d e + (1-d) p)
bench/fusion.c runs it with OPENBLAS_NUM_THREADS=1 and OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE
unset."""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

MIN_REP_SECONDS = 0.02


def dims(s):
    return [int(d) for d in s.split("x")]


def block(spec):
    """A function running one call of the block SPEC on fresh random tensors."""
    kind, rest = spec.split(":", 1)
    if kind == "gn_silu":
        shape, groups = rest.split(":")
        n, h, w, c = dims(shape)
        x = torch.randn(n, c, h, w)
        gamma, beta = torch.ones(c), torch.zeros(c)
        return lambda: F.silu(F.group_norm(x, int(groups), gamma, beta, 1e-5))
    if kind == "gn_silu_bwd":
        shape, groups = rest.split(":")
        n, h, w, c = dims(shape)
        x = torch.randn(n, c, h, w, requires_grad=True)
        gamma, beta = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
        dy = torch.randn(n, c, h, w)

        def fwd_bwd():
            with torch.enable_grad():
                y = F.silu(F.group_norm(x, int(groups), gamma, beta, 1e-5))
                return torch.autograd.grad(y, [x, gamma, beta], dy)

        return fwd_bwd
    if kind == "layer_norm":
        r, c = dims(rest)
        x = torch.randn(r, c)
        gamma, beta = torch.ones(c), torch.zeros(c)
        return lambda: F.layer_norm(x, (c,), gamma, beta, 1e-5)
    if kind == "softmax":
        x = torch.randn(*dims(rest))
        return lambda: torch.softmax(x, -1)
    if kind == "add4":
        a, b, c, d = (torch.randn(*dims(rest)) for _ in range(4))
        return lambda: a + b + c + d
    if kind == "gelu":
        x = torch.randn(*dims(rest))
        return lambda: F.gelu(x, approximate="tanh")
    if kind == "adamw":
        params = [torch.randn(*dims(s), requires_grad=True) for s in rest.split(",")]
        for p in params:
            p.grad = torch.randn_like(p)
        emas = [p.detach().clone() for p in params]
        opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
        decay = 0.995

        def step():
            opt.step()
            with torch.no_grad():
                for e, p in zip(emas, params):
                    e.mul_(decay).add_(p, alpha=1 - decay)

        return step
    raise SystemExit(f"fusion_torch.py: unknown block kind '{kind}'")


def time_ms(fn, reps):
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    n = 1 if once >= MIN_REP_SECONDS else int(MIN_REP_SECONDS / (once + 1e-9)) + 1
    times, best = [], float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            t1 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t1)
        times.append((time.perf_counter() - t0) / n * 1e3)
    return statistics.median(times), best * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with torch.no_grad():
        for i, spec in enumerate(a.specs):
            med, best = time_ms(block(spec), a.reps)
            print(f"RESULT {i} {med:.6f} {best:.6f}", flush=True)


if __name__ == "__main__":
    main()
