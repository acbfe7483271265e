#!/bin/sh
# images_vs_torch.sh — speed of disco's image model (fmnist-disco, the default DisCo-Diff
# config, or the EDM baseline with BASELINE=1) against its PyTorch 1.13 twin
# (bench/images_torch.py, whose parity bench/images_parity.sh checks), in two tables:
#
#   training  images/s of `disco train fmnist-disco --steps STEPS` (batch 128) as it prints
#             them: its stage 1 from building the training program to the last step's
#             checkpoint (the prior's stage is not timed); PyTorch times the same span, from
#             building the model to the last of STEPS AdamW steps (--train-bench, "whole").
#   sampling  denoiser images/s: images x denoiser evaluations per second. disco: `disco
#             sample fmnist-disco --n N --steps SAMPLE_STEPS` (Heun, NFE 2 SAMPLE_STEPS - 1,
#             batch 250), N x NFE / its ODE time (the prior's drawing of the codes and the
#             compilation are not timed); PyTorch: CALLS denoiser calls at batch 250 under
#             no_grad after 3 untimed ones (--sample-bench). Both include the latent tokens
#             (the codes through the latent transformer) in every call.
#
# PyTorch runs in NCHW and channels_last ("cl"), each in both configurations of
# bench/torch_env.sh (default, tuned allocator); disco and the four run interleaved RUNS
# times per table (sampling uses the model file of the training runs). Prints every run, the
# medians and the ratios disco / torch against each and against PyTorch's fastest.
#
# usage: bench/images_vs_torch.sh   (from the repository root, after `make`)
# env:   DISCO (default build/disco), RUNS (5), STEPS (30), SAMPLE_STEPS (5), N (1000),
#        CALLS (20), THREADS (2), BACKEND (auto), BASELINE (0)
set -eu

DISCO=${DISCO:-build/disco}
RUNS=${RUNS:-5}
STEPS=${STEPS:-30}
SAMPLE_STEPS=${SAMPLE_STEPS:-5}
N=${N:-1000}
CALLS=${CALLS:-20}
THREADS=${THREADS:-2}
BACKEND=${BACKEND:-auto}
BASELINE=${BASELINE:-0}
TORCH_WARMUP=3

die() { echo "images_vs_torch.sh: $*" >&2; exit 2; }
[ -f bench/images_torch.py ] && [ -f bench/torch_env.sh ] || die "run from the repository root"
. bench/torch_env.sh
check_disco_and_torch
[ "$STEPS" -ge $((TORCH_WARMUP + 1)) ] 2>/dev/null || die "STEPS must be an integer > $TORCH_WARMUP"
[ "$SAMPLE_STEPS" -ge 1 ] 2>/dev/null || die "SAMPLE_STEPS must be a positive integer"
[ "$N" -ge 1 ] 2>/dev/null || die "N must be a positive integer"
[ "$CALLS" -ge 1 ] 2>/dev/null || die "CALLS must be a positive integer"
[ "$THREADS" -ge 1 ] 2>/dev/null || die "THREADS must be a positive integer"
case "$BASELINE" in
0) flag= model=fmnist-disco name="DisCo-Diff" ;;
1) flag=--baseline model=fmnist-edm name="EDM baseline" ;;
*) die "BASELINE must be 0 or 1" ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# disco_run train|sample: disco's images/s (see above)
disco_run() {
    if [ "$1" = train ]; then
        # shellcheck disable=SC2086 # $flag is empty or one word
        OMP_NUM_THREADS=$THREADS "$DISCO" train fmnist-disco $flag --steps "$STEPS" --prior-steps 10 \
            --threads "$THREADS" --backend "$BACKEND" --out "$tmp/run" >"$tmp/disco.log" 2>&1 ||
            { cat "$tmp/disco.log" >&2; die "disco train failed"; }
        sed -n 's/^denoiser loss .* \([0-9.]*\) images\/s$/\1/p' "$tmp/disco.log"
    else
        OMP_NUM_THREADS=$THREADS "$DISCO" sample fmnist-disco --ckpt "$tmp/run/$model.model" --n "$N" \
            --steps "$SAMPLE_STEPS" --threads "$THREADS" --backend "$BACKEND" --out "$tmp/samples" \
            >"$tmp/disco.log" 2>&1 || { cat "$tmp/disco.log" >&2; die "disco sample failed"; }
        sed -n 's/^sampled \([0-9]*\) images in .* ODE \([0-9.]*\) s; .* NFE \([0-9]*\),.*/\1 \2 \3/p' "$tmp/disco.log" |
            awk '$2 > 0 { printf "%.1f\n", $1 * $3 / $2 }'
    fi
}

# torch_run KIND_LAYOUT CONFIG (KIND train or sample, LAYOUT nchw or cl): PyTorch's images/s
torch_run() {
    kind=${1%%_*} layout=${1#*_}
    [ "$layout" = cl ] && layout=channels_last
    # shellcheck disable=SC2086 # $flag is empty or one word
    torch_py "$2" bench/images_torch.py --"$kind"-bench --layout "$layout" $flag --steps "$STEPS" \
        --calls "$CALLS" --warmup "$TORCH_WARMUP" --threads "$THREADS" >"$tmp/torch.log" 2>&1 ||
        { cat "$tmp/torch.log" >&2; die "torch ($1, $2) failed"; }
    if [ "$kind" = train ]; then
        sed -n 's/.* whole \([0-9.]*\) images\/s.*/\1/p' "$tmp/torch.log"
    else
        sed -n 's/.* \([0-9.]*\) denoiser images\/s.*/\1/p' "$tmp/torch.log"
    fi
}

# ratios KIND: disco's median against each PyTorch column's and the fastest
ratios() {
    D=$(median <"$tmp/$1-disco")
    best=0 best_c=
    for c in $(torch_cols "$1"); do
        m=$(median <"$tmp/$c")
        awk -v d="$D" -v m="$m" -v c="$c" 'BEGIN { printf "disco / torch %-20s = %.2fx\n", c, d / m }'
        if awk -v m="$m" -v b="$best" 'BEGIN { exit !(m > b) }'; then best=$m best_c=$c; fi
    done
    awk -v d="$D" -v b="$best" -v c="$best_c" 'BEGIN {
        printf "disco / torch fastest (%s) = %.2fx (%s)\n", c, d / b, ((d >= b) ? "disco is faster" : "disco is slower")
    }'
}

torch_cols() { echo "$1_nchw-default $1_nchw-tuned $1_cl-default $1_cl-tuned"; }

echo "$name on Fashion-MNIST, $THREADS threads, backend $BACKEND, $RUNS interleaved runs"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "training images/s: $STEPS steps of batch 128 (disco: its stage 1 with compilation; torch: model build and every step)"
run_table "$RUNS" "train-disco $(torch_cols train)"
ratios train
echo
echo "sampling, denoiser images/s: disco $N images, Heun $SAMPLE_STEPS steps (N x NFE / ODE time); torch $CALLS calls at batch 250"
run_table "$RUNS" "sample-disco $(torch_cols sample)"
ratios sample
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
