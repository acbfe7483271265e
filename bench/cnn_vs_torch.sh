#!/bin/sh
# cnn_vs_torch.sh — training throughput of disco's fmnist-cnn against the same CNN in PyTorch
# 1.13 (NCHW and channels_last): the same batch, init scheme, optimizer (AdamW, clipping,
# EMA) and schedule; each side trains STEPS steps and reports images/s over steps
# WARMUP+1 .. STEPS-1 (the first WARMUP build primitives and caches, the last writes disco's
# checkpoint). disco and PyTorch in both layouts and both configurations of bench/torch_env.sh
# (default, tuned allocator) are run interleaved RUNS times; prints every run, the medians and
# the ratios disco/torch, against each and against PyTorch's fastest.
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

die() { echo "cnn_vs_torch.sh: $*" >&2; exit 2; }
[ -f bench/cnn_torch.py ] && [ -f bench/torch_env.sh ] || die "run from the repository root"
. bench/torch_env.sh
check_disco_and_torch
[ "$STEPS" -ge $((WARMUP + 2)) ] 2>/dev/null || die "STEPS must be an integer >= $((WARMUP + 2))"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

disco_run() {
    OMP_NUM_THREADS=$THREADS "$DISCO" train fmnist-cnn --steps "$STEPS" --threads "$THREADS" \
        --backend "$BACKEND" --out "$tmp/run" >"$tmp/disco.log" 2>&1 || { cat "$tmp/disco.log" >&2; die "disco failed"; }
    sed -n 's/^throughput of steps .*: \([0-9.]*\) images\/s.*/\1/p' "$tmp/disco.log"
}

# torch_run LAYOUT CONFIG: images/s of PyTorch
torch_run() {
    torch_py "$2" bench/cnn_torch.py --layout "$1" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" \
        >"$tmp/torch.log" 2>&1 || { cat "$tmp/torch.log" >&2; die "torch ($1, $2) failed"; }
    sed -n 's/.* \([0-9.]*\) images\/s.*/\1/p' "$tmp/torch.log"
}

echo "fmnist-cnn training, batch 128, $THREADS threads, steps $((WARMUP + 1))..$((STEPS - 1)) of $STEPS timed, $RUNS runs"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
cols="nchw-default nchw-tuned channels_last-default channels_last-tuned"
printf '%-7s %12s' run "disco img/s"
for c in $cols; do printf ' %22s' "torch $c"; done
echo
i=1
while [ "$i" -le "$RUNS" ]; do
    d=$(disco_run)
    [ -n "$d" ] || die "disco printed no throughput (see the log above)"
    echo "$d" >>"$tmp/disco"
    printf '%-7s %12s' "$i" "$d"
    for c in $cols; do
        v=$(torch_run "${c%-*}" "${c##*-}")
        [ -n "$v" ] || die "torch $c printed no throughput"
        echo "$v" >>"$tmp/$c"
        printf ' %22s' "$v"
    done
    echo
    i=$((i + 1))
done
D=$(median <"$tmp/disco")
printf '%-7s %12s' median "$D"
best=0
best_c=
for c in $cols; do
    m=$(median <"$tmp/$c")
    printf ' %22s' "$m"
    if awk -v m="$m" -v b="$best" 'BEGIN { exit !(m > b) }'; then best=$m; best_c=$c; fi
done
echo
for c in $cols; do
    awk -v d="$D" -v m="$(median <"$tmp/$c")" -v c="$c" 'BEGIN { printf "disco / torch %-22s = %.2fx\n", c, d / m }'
done
awk -v d="$D" -v b="$best" -v c="$best_c" 'BEGIN {
    printf "disco / torch fastest (%s) = %.2fx (%s)\n", c, d / b, ((d >= b) ? "disco is faster" : "disco is slower")
}'
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
