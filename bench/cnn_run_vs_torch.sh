#!/bin/sh
# cnn_run_vs_torch.sh — the whole `disco train fmnist-cnn` command with its defaults (load the
# data, compile, train 700 steps, write the checkpoints, evaluate the 10k test images with the
# EMA and the raw params, save the weights) against the same whole run in PyTorch 1.13
# (bench/cnn_torch.py --eval), in both configurations of bench/torch_env.sh (default, tuned
# allocator) and each of LAYOUTS. Both sides run under `/usr/bin/time -v`, which gives the
# wall time and peak resident memory of each command alike; they run interleaved RUNS times.
# Prints every run (wall s, the training loop's own s, peak RSS MB, test accuracy of the raw
# and the EMA params), the medians, and the ratios disco/torch of wall time and peak RSS,
# against each PyTorch column and against the fastest. disco's JIT kernel cache is used as it
# is (a cold one adds about 0.2 s of LLVM to the first run).
#
# usage: bench/cnn_run_vs_torch.sh   (from the repository root, after `make`)
# env:   DISCO (default build/disco), RUNS (1), THREADS (2), BACKEND (auto),
#        LAYOUTS (nchw channels_last)
set -eu

DISCO=${DISCO:-build/disco}
RUNS=${RUNS:-1}
THREADS=${THREADS:-2}
BACKEND=${BACKEND:-auto}
LAYOUTS=${LAYOUTS:-nchw channels_last}

die() { echo "cnn_run_vs_torch.sh: $*" >&2; exit 2; }
[ -f bench/cnn_torch.py ] && [ -f bench/torch_env.sh ] || die "run from the repository root"
. bench/torch_env.sh
check_disco_and_torch
[ -x /usr/bin/time ] || die "no /usr/bin/time (apt-get install time)"
[ "$THREADS" -ge 1 ] 2>/dev/null || die "THREADS must be a positive integer"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# row RUN LABEL WALL TRAIN RSS ACC EMA: one line of the table
row() { printf '%-7s %-28s %8s %8s %12s %9s %9s\n' "$@"; }
label() { if [ "$1" = disco ]; then echo disco; else echo "torch $1"; fi; }
# med KEY FIELD: the median of field FIELD (1 wall .. 5 EMA accuracy) over KEY's runs
med() { cut -d' ' -f"$2" "$tmp/$1" | median; }

# timed KEY CMD...: runs CMD under /usr/bin/time -v, appends "wall-s train-s rss-MB acc ema" to
# $tmp/KEY and prints it as a row of run $run
timed() {
    key=$1
    shift
    /usr/bin/time -v -o "$tmp/time" "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" "$tmp/time" >&2; die "$key failed"; }
    wall=$(sed -n 's/.*Elapsed (wall clock) time.*: //p' "$tmp/time" |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/time" | awk '{ printf "%.1f", $1 / 1024 }')
    train=$(sed -n 's/.*trained steps 1\.\.[0-9]* in \([0-9.]*\) s.*/\1/p' "$tmp/log")
    acc=$(sed -n 's/^test accuracy \([0-9.]*\)$/\1/p' "$tmp/log")
    ema=$(sed -n 's/^accuracy of the EMA params \([0-9.]*\)$/\1/p' "$tmp/log")
    [ -n "$wall" ] && [ -n "$rss" ] && [ -n "$train" ] && [ -n "$acc" ] && [ -n "$ema" ] ||
        { cat "$tmp/log" "$tmp/time" >&2; die "$key: a number is missing from its output"; }
    echo "$wall $train $rss $acc $ema" >>"$tmp/$key"
    row "$run" "$(label "$key")" "$wall" "$train" "$rss" "$acc" "$ema"
}

cols=
for l in $LAYOUTS; do
    case "$l" in nchw | channels_last) ;; *) die "unknown layout $l in LAYOUTS" ;; esac
    for c in $TORCH_CONFIGS; do cols="$cols $l-$c"; done
done
[ -n "$cols" ] || die "LAYOUTS is empty"

echo "whole \`disco train fmnist-cnn\` (700 steps of batch 128, test set eval) vs cnn_torch.py --eval; $THREADS threads, backend $BACKEND, $RUNS runs"
echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
row run side "wall s" "train s" "peak RSS MB" "test acc" "EMA acc"
run=1
while [ "$run" -le "$RUNS" ]; do
    rm -rf "$tmp/out"
    timed disco env OMP_NUM_THREADS="$THREADS" "$DISCO" train fmnist-cnn --threads "$THREADS" --backend "$BACKEND" \
        --out "$tmp/out"
    for c in $cols; do
        # torch_py is a shell function: a shell runs it under /usr/bin/time, whose peak RSS is
        # then the largest of that shell's and python's, i.e. python's
        # shellcheck disable=SC2016 # expanded by that shell
        timed "$c" sh -c '. bench/torch_env.sh && torch_py "$@"' torch_py "${c##*-}" bench/cnn_torch.py --eval \
            --layout "${c%-*}" --threads "$THREADS"
    done
    run=$((run + 1))
done

echo
row "" side "wall s" "train s" "peak RSS MB" "test acc" "EMA acc"
for k in disco $cols; do
    row median "$(label "$k")" "$(med "$k" 1)" "$(med "$k" 2)" "$(med "$k" 3)" "$(med "$k" 4)" "$(med "$k" 5)"
done

echo
D=$(med disco 1)
R=$(med disco 3)
best=
best_c=
for c in $cols; do
    w=$(med "$c" 1)
    awk -v d="$D" -v w="$w" -v R="$R" -v r="$(med "$c" 3)" -v c="$c" \
        'BEGIN { printf "disco / torch %-22s wall %.2fx, peak RSS %.2fx\n", c, d / w, R / r }'
    if [ -z "$best" ] || awk -v w="$w" -v b="$best" 'BEGIN { exit !(w < b) }'; then best=$w; best_c=$c; fi
done
awk -v d="$D" -v b="$best" -v R="$R" -v r="$(med "$best_c" 3)" -v c="$best_c" 'BEGIN {
    printf "disco / torch fastest (%s): wall %.2fx (%s), peak RSS %.2fx (%s)\n", c, d / b,
        (d <= b) ? "disco is faster" : "disco is slower", R / r, (R <= r) ? "disco uses less" : "disco uses more"
}'
echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
