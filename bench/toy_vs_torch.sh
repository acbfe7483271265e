#!/bin/sh
# toy_vs_torch.sh — training throughput of disco's DisCo-Diff toy model and its EDM baseline
# (denoiser MLP width 256, batch 512; models/disco/toy_model.c) against the same models and
# training step in PyTorch 1.13 (bench/toy_torch.py). Each side trains STEPS steps; steps/s
# are over all STEPS steps, timed from the start of the first (disco: its trainer's progress
# rate; graph compilation and the prior stage are not timed). disco and PyTorch in both
# configurations of bench/torch_env.sh (default, tuned allocator) are run interleaved RUNS
# times, for each model; prints every run, the medians and the ratios disco/torch, against
# each configuration and against PyTorch's fastest.
#
# usage: bench/toy_vs_torch.sh   (from the repository root, after `make`)
# env:   DISCO (default build/disco), RUNS (5), STEPS (500), THREADS (2), BACKEND (auto)
set -eu

DISCO=${DISCO:-build/disco}
RUNS=${RUNS:-5}
STEPS=${STEPS:-500}
THREADS=${THREADS:-2}
BACKEND=${BACKEND:-auto}

die() { echo "toy_vs_torch.sh: $*" >&2; exit 2; }
[ -f bench/toy_torch.py ] && [ -f bench/torch_env.sh ] || die "run from the repository root"
. bench/torch_env.sh
check_disco_and_torch
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

# torch_run disco|edm CONFIG: steps/s of PyTorch
torch_run() {
    torch_py "$2" bench/toy_torch.py --model "$1" --steps "$STEPS" --threads "$THREADS" >"$tmp/torch.log" 2>&1 ||
        { cat "$tmp/torch.log" >&2; die "torch ($1, $2) failed"; }
    sed -n 's/.* \([0-9.]*\) steps\/s$/\1/p' "$tmp/torch.log"
}

echo "toy training (width 256, batch 512), $STEPS steps timed, $THREADS threads, backend $BACKEND, $RUNS runs"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
cols="disco-disco disco-default disco-tuned edm-disco edm-default edm-tuned"
run_table "$RUNS" "$cols"
for m in disco edm; do
    D=$(median <"$tmp/$m-disco") T0=$(median <"$tmp/$m-default") T1=$(median <"$tmp/$m-tuned")
    awk -v m="$m" -v d="$D" -v t0="$T0" -v t1="$T1" 'BEGIN {
        best = (t0 > t1) ? t0 : t1
        printf "%-5s disco / torch default = %.2fx, tuned = %.2fx, fastest = %.2fx (steps/s)\n", m, d / t0, d / t1, d / best
    }'
done
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
