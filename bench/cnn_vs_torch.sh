#!/bin/sh
# cnn_vs_torch.sh — training throughput of disco's fmnist-cnn against the same CNN in PyTorch
# 1.13 (NCHW and channels_last): the same batch, init scheme, optimizer (AdamW, clipping,
# EMA) and schedule; each side trains STEPS steps and reports images/s over steps
# WARMUP+1 .. STEPS-1 (the first WARMUP build primitives and caches, the last writes disco's
# checkpoint). The three are run interleaved RUNS times; prints every run, the medians and the
# ratios disco/torch.
#
# usage: bench/cnn_vs_torch.sh   (from the repository root, after `make`)
# env:   DISCO (default build/disco), RUNS (5), STEPS (56), THREADS (2), BACKEND (auto)
set -eu

DISCO=${DISCO:-build/disco}
RUNS=${RUNS:-5}
STEPS=${STEPS:-56}
THREADS=${THREADS:-2}
BACKEND=${BACKEND:-auto}
WARMUP=5   # models/fmnist_cnn.c TIMING_WARMUP
TORCH_PY=/usr/bin/python3

die() { echo "cnn_vs_torch.sh: $*" >&2; exit 2; }
[ -x "$DISCO" ] || die "no disco binary at $DISCO (run make, or set DISCO)"
[ -f bench/cnn_torch.py ] || die "run from the repository root"
"$TORCH_PY" -c 'import torch' 2>/dev/null || die "PyTorch is not importable from $TORCH_PY (apt-get install python3-torch)"
[ "$RUNS" -ge 1 ] 2>/dev/null || die "RUNS must be a positive integer"
[ "$STEPS" -ge $((WARMUP + 2)) ] 2>/dev/null || die "STEPS must be an integer >= $((WARMUP + 2))"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

disco_run() {
    OMP_NUM_THREADS=$THREADS "$DISCO" train fmnist-cnn --steps "$STEPS" --threads "$THREADS" \
        --backend "$BACKEND" --out "$tmp/run" >"$tmp/disco.log" 2>&1 || { cat "$tmp/disco.log" >&2; die "disco failed"; }
    sed -n 's/^throughput of steps .*: \([0-9.]*\) images\/s.*/\1/p' "$tmp/disco.log"
}

torch_run() {
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 "$TORCH_PY" bench/cnn_torch.py \
        --layout "$1" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" >"$tmp/torch.log" 2>&1 ||
        { cat "$tmp/torch.log" >&2; die "torch ($1) failed"; }
    sed -n 's/.* \([0-9.]*\) images\/s.*/\1/p' "$tmp/torch.log"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "fmnist-cnn training, batch 128, $THREADS threads, steps $((WARMUP + 1))..$((STEPS - 1)) of $STEPS timed, $RUNS runs"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %14s %14s %20s\n' run "disco img/s" "torch NCHW" "torch chan_last"
i=1
while [ "$i" -le "$RUNS" ]; do
    d=$(disco_run); n=$(torch_run nchw); c=$(torch_run channels_last)
    [ -n "$d" ] && [ -n "$n" ] && [ -n "$c" ] || die "a run printed no throughput (see the logs above)"
    printf '%-5s %14s %14s %20s\n' "$i" "$d" "$n" "$c"
    echo "$d" >>"$tmp/d"; echo "$n" >>"$tmp/n"; echo "$c" >>"$tmp/c"
    i=$((i + 1))
done
D=$(median <"$tmp/d"); N=$(median <"$tmp/n"); C=$(median <"$tmp/c")
printf '%-5s %14s %14s %20s\n' median "$D" "$N" "$C"
awk -v d="$D" -v n="$N" -v c="$C" 'BEGIN {
    printf "disco / torch NCHW          = %.2fx\n", d / n
    printf "disco / torch channels_last = %.2fx\n", d / c
    best = (n > c) ? n : c
    verdict = (d >= best) ? "disco is faster" : "disco is slower"
    printf "disco / torch best layout   = %.2fx (%s)\n", d / best, verdict
}'
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
