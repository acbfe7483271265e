#!/bin/sh
# toy_vs_torch.sh — training throughput of disco's DisCo-Diff toy model and its EDM baseline
# (denoiser MLP width 256, batch 512; models/disco/toy_model.c) against the same models and
# training step in PyTorch 1.13 (bench/toy_torch.py). Each side trains STEPS steps; steps/s
# are over all STEPS steps, timed from the start of the first (disco: its trainer's progress
# rate; graph compilation and the prior stage are not timed). The four are run interleaved
# RUNS times; prints every run, the medians and the ratios disco/torch.
#
# usage: bench/toy_vs_torch.sh   (from the repository root, after `make`)
# env:   DISCO (default build/disco), RUNS (5), STEPS (500), THREADS (2), BACKEND (auto)
set -eu

DISCO=${DISCO:-build/disco}
RUNS=${RUNS:-5}
STEPS=${STEPS:-500}
THREADS=${THREADS:-2}
BACKEND=${BACKEND:-auto}
TORCH_PY=/usr/bin/python3

die() { echo "toy_vs_torch.sh: $*" >&2; exit 2; }
[ -x "$DISCO" ] || die "no disco binary at $DISCO (run make, or set DISCO)"
[ -f bench/toy_torch.py ] || die "run from the repository root"
"$TORCH_PY" -c 'import torch' 2>/dev/null || die "PyTorch is not importable from $TORCH_PY (apt-get install python3-torch)"
[ "$RUNS" -ge 1 ] 2>/dev/null || die "RUNS must be a positive integer"
[ "$STEPS" -ge 20 ] 2>/dev/null || die "STEPS must be an integer >= 20"
[ "$THREADS" -ge 1 ] 2>/dev/null || die "THREADS must be a positive integer"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# disco_run disco|edm: steps/s of the denoiser stage
disco_run() {
    flag=; [ "$1" = edm ] && flag=--baseline
    OMP_NUM_THREADS=$THREADS "$DISCO" train toy $flag --steps "$STEPS" --prior-steps 10 --threads "$THREADS" \
        --backend "$BACKEND" --out "$tmp/run" >"$tmp/disco.log" 2>&1 || { cat "$tmp/disco.log" >&2; die "disco failed"; }
    sed -n "s/^toy_$1_train step $STEPS\/$STEPS .* it\/s \([0-9.]*\) .*/\1/p" "$tmp/disco.log" | tail -n 1
}

torch_run() {
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 "$TORCH_PY" bench/toy_torch.py \
        --model "$1" --steps "$STEPS" --threads "$THREADS" >"$tmp/torch.log" 2>&1 ||
        { cat "$tmp/torch.log" >&2; die "torch ($1) failed"; }
    sed -n 's/.* \([0-9.]*\) steps\/s$/\1/p' "$tmp/torch.log"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "toy training (width 256, batch 512), $STEPS steps timed, $THREADS threads, backend $BACKEND, $RUNS runs"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %14s %14s %14s %14s\n' run "disco DisCo" "torch DisCo" "disco EDM" "torch EDM"
i=1
while [ "$i" -le "$RUNS" ]; do
    a=$(disco_run disco); b=$(torch_run disco); c=$(disco_run edm); d=$(torch_run edm)
    [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] && [ -n "$d" ] || die "a run printed no throughput"
    printf '%-6s %14s %14s %14s %14s\n' "$i" "$a" "$b" "$c" "$d"
    echo "$a" >>"$tmp/a"; echo "$b" >>"$tmp/b"; echo "$c" >>"$tmp/c"; echo "$d" >>"$tmp/d"
    i=$((i + 1))
done
A=$(median <"$tmp/a"); B=$(median <"$tmp/b"); C=$(median <"$tmp/c"); D=$(median <"$tmp/d")
printf '%-6s %14s %14s %14s %14s\n' median "$A" "$B" "$C" "$D"
awk -v a="$A" -v b="$B" -v c="$C" -v d="$D" 'BEGIN {
    printf "DisCo-Diff: disco / torch = %.2fx (steps/s)\n", a / b
    printf "EDM:        disco / torch = %.2fx (steps/s)\n", c / d
}'
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
