#!/bin/sh
# toy_sample_vs_torch.sh — sampling throughput of disco's DisCo-Diff toy model and its EDM
# baseline (`disco sample toy`: N points, HEUN_STEPS Heun steps, 2 HEUN_STEPS - 1 denoiser
# calls of the width-256 MLP; models/disco/sample.c) against the same sampler and denoiser in
# PyTorch 1.13 (bench/toy_torch.py --sample). Both sides time the ODE only (initial noise and
# the Heun integration): disco's own `sampled ...: prior P s, ODE O s` line, without compiling
# and without drawing the codes from the prior (its median is printed apart); PyTorch draws its
# codes uniformly, untimed. The weights come from a one-step `disco train toy` (the speed does
# not depend on them; PyTorch's are random). disco and PyTorch in both configurations of
# bench/torch_env.sh (default, tuned allocator) are run interleaved RUNS times, for each model;
# prints every run's ODE seconds, the medians as seconds and points/s (N / ODE seconds), and
# the ratios of disco's points/s to torch's, against each configuration and against PyTorch's
# fastest.
#
# usage: bench/toy_sample_vs_torch.sh   (from the repository root, after `make`)
# env:   DISCO (default build/disco), RUNS (5), N (20000), HEUN_STEPS (50), THREADS (2),
#        BACKEND (auto)
set -eu

DISCO=${DISCO:-build/disco}
RUNS=${RUNS:-5}
N=${N:-20000}
HEUN_STEPS=${HEUN_STEPS:-50}
THREADS=${THREADS:-2}
BACKEND=${BACKEND:-auto}

die() { echo "toy_sample_vs_torch.sh: $*" >&2; exit 2; }
[ -f bench/toy_torch.py ] && [ -f bench/torch_env.sh ] || die "run from the repository root"
. bench/torch_env.sh
check_disco_and_torch
[ "$N" -ge 1 ] 2>/dev/null || die "N must be a positive integer"
[ "$HEUN_STEPS" -ge 1 ] 2>/dev/null || die "HEUN_STEPS must be a positive integer"
[ "$THREADS" -ge 1 ] 2>/dev/null || die "THREADS must be a positive integer"
export OMP_NUM_THREADS="$THREADS"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

for flag in "" --baseline; do
    # shellcheck disable=SC2086 # an empty flag is no word
    "$DISCO" train toy $flag --steps 1 --prior-steps 1 --threads "$THREADS" --backend "$BACKEND" \
        --out "$tmp/ckpt" >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log" >&2; die "disco train toy $flag failed"; }
done

# disco_run disco|edm: the ODE seconds of `disco sample toy`; its prior seconds into $tmp/prior-MODEL
disco_run() {
    "$DISCO" sample toy --ckpt "$tmp/ckpt/toy-$1.ckpt" --n "$N" --heun-steps "$HEUN_STEPS" --threads "$THREADS" \
        --backend "$BACKEND" --out "$tmp/s.npy" >"$tmp/disco.log" 2>&1 || { cat "$tmp/disco.log" >&2; die "disco failed"; }
    sed -n 's/^sampled .* prior \([0-9.]*\) s, .*/\1/p' "$tmp/disco.log" >>"$tmp/prior-$1"
    sed -n 's/^sampled .*, ODE \([0-9.]*\) s .*/\1/p' "$tmp/disco.log"
}

# torch_run disco|edm CONFIG: the ODE seconds of PyTorch
torch_run() {
    torch_py "$2" bench/toy_torch.py --sample --model "$1" --n "$N" --heun-steps "$HEUN_STEPS" --threads "$THREADS" \
        >"$tmp/torch.log" 2>&1 || { cat "$tmp/torch.log" >&2; die "torch ($1, $2) failed"; }
    sed -n 's/^torch sample: .* \([0-9.]*\) s ODE$/\1/p' "$tmp/torch.log"
}

echo "toy sampling (width 256): $N points, $HEUN_STEPS Heun steps, $THREADS threads, backend $BACKEND, $RUNS runs;" \
    "ODE seconds"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
cols="disco-disco disco-default disco-tuned edm-disco edm-default edm-tuned"
run_table "$RUNS" "$cols"
printf '%-9s' points/s
for c in $cols; do printf ' %14s' "$(awk -v n="$N" -v s="$(median <"$tmp/$c")" 'BEGIN { printf "%.0f", n / s }')"; done
echo
for m in disco edm; do
    D=$(median <"$tmp/$m-disco") T0=$(median <"$tmp/$m-default") T1=$(median <"$tmp/$m-tuned")
    awk -v m="$m" -v d="$D" -v t0="$T0" -v t1="$T1" 'BEGIN {
        best = (t0 < t1) ? t0 : t1
        printf "%-5s disco / torch default = %.2fx, tuned = %.2fx, fastest = %.2fx (points/s)\n", m, t0 / d, t1 / d, best / d
    }'
done
echo "disco's prior (drawing the codes, not in the ODE times): median $(median <"$tmp/prior-disco") s"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
