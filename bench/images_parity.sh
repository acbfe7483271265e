#!/bin/sh
# images_parity.sh — parity of disco's image model with its PyTorch twin: for the DisCo-Diff
# config (dc_img_config_defaults) and the EDM baseline, build/bench/images_twin writes the
# params, one batch with its draws, disco's loss and every param's gradient, and
# bench/images_torch.py --parity recomputes them with autograd and compares (per param
# ||g_torch - g_disco|| / ||g_disco|| <= TOL, the loss to LOSS_TOL relative). Prints each
# comparison and PASS or FAIL per config; exits 1 when any fails.
#
# usage: bench/images_parity.sh   (from the repository root, after `make bench`)
# env:   TWIN (default build/bench/images_twin), BATCH (4), SEED (0), THREADS (1),
#        BACKEND (auto), TOL (1e-4), LOSS_TOL (1e-5), LATENT_GROUPS (1; 2: hierarchical latents)
set -eu

TWIN=${TWIN:-build/bench/images_twin}
BATCH=${BATCH:-4}
SEED=${SEED:-0}
THREADS=${THREADS:-1}
BACKEND=${BACKEND:-auto}
TOL=${TOL:-1e-4}
LOSS_TOL=${LOSS_TOL:-1e-5}
LATENT_GROUPS=${LATENT_GROUPS:-1}

die() { echo "images_parity.sh: $*" >&2; exit 2; }
[ -f bench/images_torch.py ] && [ -f bench/torch_env.sh ] || die "run from the repository root"
. bench/torch_env.sh
[ -x "$TWIN" ] || die "no $TWIN (run make bench, or set TWIN)"
"$TORCH_PY" -c 'import torch' 2>/dev/null || die "PyTorch is not importable from $TORCH_PY (apt-get install python3-torch)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
summary=
for model in disco baseline; do
    flag=
    [ "$model" = baseline ] && flag=--baseline
    echo "== $model"
    # shellcheck disable=SC2086 # $flag is empty or one word
    OMP_NUM_THREADS=$THREADS "$TWIN" "$tmp/$model" $flag --groups "$LATENT_GROUPS" --batch "$BATCH" --seed "$SEED" \
        --backend "$BACKEND" || die "images_twin failed ($model)"
    if torch_py default bench/images_torch.py --parity "$tmp/$model" --tol "$TOL" --loss-tol "$LOSS_TOL" \
        --threads "$THREADS"; then
        summary="$summary $model PASS"
    else
        summary="$summary $model FAIL"
        status=1
    fi
done
echo "parity (batch $BATCH, seed $SEED, backend $BACKEND, tolerance $TOL per gradient, $LOSS_TOL loss):$summary"
exit $status
