#!/bin/sh
# attention_vs_torch.sh — disco's attention benchmark (build/bench/attention: the attention op,
# "fused", and its plain spelling, "unfused") side by side with the same programs in PyTorch
# 1.13 (bench/attention_torch.py) in both configurations of bench/torch_env.sh (default, tuned
# allocator). For each S in turn it runs disco, then PyTorch default, then PyTorch tuned on
# every other dimension, so both sides of a shape see about the same machine load (each side
# reads the rows so far, --history, to tell which larger shapes would take too long); prints every
# row (PyTorch's %peak against the FMA peak disco measured for that S), then a table per shape of
# disco fused, disco unfused and PyTorch's fastest configuration, with the speedups
# torch ms / disco ms (> 1: disco is faster) and their geometric means.
#
# usage: bench/attention_vs_torch.sh [FLAGS]   (from the repository root, after `make bench`)
#   FLAGS go to both sides: --mode, --causal, --bh, --d, --budget, --max-seconds, --max-gib
#   (build/bench/attention --help says what they mean); S is chosen by SIZES
# env:   DISCO (default build/bench/attention), SIZES ("49 196 256 1024 4096"), THREADS (2)
set -eu

DISCO=${DISCO:-build/bench/attention}
SIZES=${SIZES:-49 196 256 1024 4096}
THREADS=${THREADS:-2}

die() { echo "attention_vs_torch.sh: $*" >&2; exit 2; }
[ -f bench/attention_torch.py ] && [ -f bench/torch_env.sh ] || die "run from the repository root"
. bench/torch_env.sh
check_disco_and_torch
[ "$THREADS" -ge 1 ] 2>/dev/null || die "THREADS must be a positive integer"
[ -n "$SIZES" ] || die "SIZES is empty"
for s in $SIZES; do [ "$s" -ge 1 ] 2>/dev/null || die "SIZES: '$s' is not a positive integer"; done
n=$#
while [ "$n" -gt 0 ]; do
    case "$1" in
    --mode | --causal | --bh | --d | --budget | --max-seconds | --max-gib)
        [ "$n" -ge 2 ] || die "$1 needs a value"
        set -- "$@" "$1" "$2"
        shift 2
        n=$((n - 2))
        ;;
    *) die "$1: not a flag this script passes on (--mode, --causal, --bh, --d, --budget, --max-seconds, --max-gib; S by SIZES)" ;;
    esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
: >"$tmp/rows" # every row so far: each side estimates a larger S's time from its smaller ones

echo "attention: disco ($DISCO) vs PyTorch 1.13 (bench/attention_torch.py, configurations $TORCH_CONFIGS); $THREADS threads"
echo "for each S of '$SIZES': disco, then PyTorch in each configuration, on the same shapes"
echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
mismatch=0
first=1
for s in $SIZES; do
    echo
    echo "== S = $s: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    rc=0
    OMP_NUM_THREADS=$THREADS "$DISCO" --threads "$THREADS" --s "$s" --history "$tmp/rows" "$@" >"$tmp/disco.out" || rc=$?
    [ "$rc" -le 1 ] || { cat "$tmp/disco.out"; die "$DISCO failed (status $rc)"; }
    [ "$rc" -eq 0 ] || mismatch=1
    # the first run's header in full; after it, its FMA peak and what follows the column header
    if [ "$first" -eq 1 ]; then cat "$tmp/disco.out"; else
        grep '^# FMA peak (' "$tmp/disco.out"
        sed '1,/^mode /d' "$tmp/disco.out"
    fi
    grep -E '^fwd(bwd)? ' "$tmp/disco.out" >>"$tmp/rows" || true
    peak=$(sed -n 's/^# FMA peak .*: \([0-9.]*\) GFLOP\/s$/\1/p' "$tmp/disco.out")
    [ -n "$peak" ] || die "$DISCO printed no FMA peak"
    for cfg in $TORCH_CONFIGS; do
        torch_py "$cfg" bench/attention_torch.py --threads "$THREADS" --s "$s" --config "$cfg" --peak "$peak" \
            --history "$tmp/rows" "$@" \
            >"$tmp/torch.out" || { cat "$tmp/torch.out"; die "attention_torch.py ($cfg) failed"; }
        if [ "$first" -eq 1 ]; then grep '^# PyTorch' "$tmp/torch.out"; fi
        grep -E '^fwd(bwd)? ' "$tmp/torch.out" | tee -a "$tmp/rows"
    done
    first=0
done

echo
echo "per shape: median ms; speedup = torch ms / disco ms (> 1: disco is faster), against PyTorch's fastest"
echo "configuration; picked: the variant disco's compiler picks for the shape (fuse-attention's rule)"
awk '
    { key = sprintf("%-7s %6s %5s %6s %4s", $1, $2, $3, $4, $5)
      if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      v = $6; ms = ($7 == "skipped:") ? "" : $8
      if (sub(/[*]$/, "", v)) picked[key] = v
      if (v == "fused" || v == "unfused") t[key, v] = ms
      else if (ms != "" && (!((key, "torch") in t) || ms + 0 < t[key, "torch"] + 0)) { t[key, "torch"] = ms; cfg[key] = substr(v, 7) } }
    function cell(x) { return x == "" ? "-" : x }
    function speedup(k, v, name,   r) {
        if (v == "" || t[k, v] == "" || t[k, "torch"] == "") return "-"
        r = t[k, "torch"] / t[k, v]; logsum[name] += log(r); count[name]++
        return sprintf("%.2fx", r) }
    END {
        printf "%-7s %6s %5s %6s %4s %10s %10s %-8s %10s %-8s %12s %14s %13s\n", "mode", "causal", "bh", "S", "D",
               "fused ms", "unfused ms", "picked", "torch ms", "(torch)", "torch/fused", "torch/unfused", "torch/picked"
        for (i = 1; i <= n; i++) {
            k = order[i]
            printf "%s %10s %10s %-8s %10s %-8s %12s %14s %13s\n", k, cell(t[k, "fused"]), cell(t[k, "unfused"]),
                   cell(picked[k]), cell(t[k, "torch"]), t[k, "torch"] != "" ? cfg[k] : "-", speedup(k, "fused", "fused"),
                   speedup(k, "unfused", "unfused"), speedup(k, picked[k], "picked")
        }
        for (v = 0; v < 3; v++) {
            name = v == 0 ? "fused" : v == 1 ? "unfused" : "picked"
            if (count[name]) printf "geometric mean of torch / disco %-7s = %.2fx over %d shapes\n", name,
                                    exp(logsum[name] / count[name]), count[name]
        }
    }' "$tmp/rows"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%H:%M:%S UTC')"
[ "$mismatch" -eq 0 ] || die "disco's fused and unfused outputs differ for some shape (MISMATCH rows above)"
