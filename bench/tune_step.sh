#!/bin/sh
# tune_step.sh — what `disco tune` buys on the image model's training step. In a fresh cache
# directory (no kernels, no tuning database) it times `disco tune fmnist-disco` (wall clock,
# LLVM compiles included), then runs `disco train fmnist-disco --steps STEPS --prior-steps 1`
# RUNS times each, interleaved, in three configurations:
#   tuned    --backend auto with the database just written;
#   default  --backend auto --no-tune (the default rule, dc_contraction_default);
#   dnnl     --backend dnnl (oneDNN for every contraction, ref for the rest);
# and prints each run's denoiser images/s as `disco train` reports them (stage 1, from building
# the training program to the last step's checkpoint), the medians and the ratios. One untimed
# run per configuration comes first, so every timed run finds its kernels in the cache.
#
# usage: bench/tune_step.sh   (from the repository root, after `make`)
# env:   DISCO (default build/disco), RUNS (3), STEPS (60), THREADS (2)
set -eu

DISCO=${DISCO:-build/disco}
RUNS=${RUNS:-3}
STEPS=${STEPS:-60}
THREADS=${THREADS:-2}
[ -x "$DISCO" ] || { echo "tune_step.sh: $DISCO missing (run make)" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export DISCO_CACHE_DIR="$dir/cache" OMP_NUM_THREADS="$THREADS"
echo "tune_step.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $THREADS threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"

t0=$(date +%s.%N)
"$DISCO" tune fmnist-disco 2>/dev/null
t1=$(date +%s.%N)
echo "disco tune fmnist-disco (cold cache): $(echo "$t1 - $t0" | bc) s"

run() { # config -> images/s
    case $1 in
    tuned) set -- --backend auto ;;
    default) set -- --backend auto --no-tune ;;
    dnnl) set -- --backend dnnl ;;
    esac
    "$DISCO" train fmnist-disco --steps "$STEPS" --prior-steps 1 --out "$dir/run" "$@" 2>/dev/null |
        sed -n 's/.*s, \([0-9.]*\) images\/s$/\1/p'
}

# one untimed run per configuration first: the loop groups' JIT kernels (which the tuner does
# not build) are compiled into the cache then, not inside the first timed run
for c in tuned default dnnl; do run $c >/dev/null; done
for i in $(seq "$RUNS"); do
    for c in tuned default dnnl; do
        v=$(run $c)
        echo "run $i $c $v images/s"
        echo "$v" >>"$dir/$c"
    done
done

median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mt=$(median "$dir/tuned"); md=$(median "$dir/default"); mn=$(median "$dir/dnnl")
echo "median images/s (training step, $STEPS steps of batch 128): tuned $mt, default $md, dnnl $mn"
echo "tuned / default $(echo "scale=3; $mt / $md" | bc)x, tuned / dnnl $(echo "scale=3; $mt / $mn" | bc)x"
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
