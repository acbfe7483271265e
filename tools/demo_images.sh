#!/bin/sh
# demo_images.sh — `make demo-images`: DisCo-Diff on class-conditional Fashion-MNIST end to end.
# Trains the EDM baseline and DisCo-Diff (U-Net, ViT encoder, then the prior) with the same steps
# and batch, evaluates both (disco eval fmnist-disco, which trains fmnist-cnn for the features
# when its weights are missing) and writes everything into OUT (default out/images): the model
# files, metrics.json, samples_{disco,edm}.npy, labels_{disco,edm}.npy, grid_{disco,edm}.png and
# grid_latents.png. QUICK=1 runs the same path with tiny networks and small sample sets (a test
# of the plumbing, not of quality). Each stage's wall time is printed, then the total.
set -eu
DISCO=${DISCO:-build/disco}
OUT=${OUT:-out/images}
if [ -n "${QUICK:-}" ]; then
    TRAIN="--quick"
    EVAL="--n 200 --steps 2,4 --guidance-steps 4 --curv-n 20 --batch 100"
else
    TRAIN=""
    EVAL="--n 5000 --steps 5,10,18,35 --guidance 0,1,2 --guidance-steps 18 --curv-n 200"
fi
mkdir -p "$OUT"
start=$(date +%s)
stage() {
    name=$1
    shift
    t0=$(date +%s)
    "$@"
    echo "== $name: $(( $(date +%s) - t0 )) s"
}
stage "EDM baseline" "$DISCO" train fmnist-disco --baseline $TRAIN --out "$OUT"
stage "DisCo-Diff" "$DISCO" train fmnist-disco $TRAIN --out "$OUT"
stage "evaluation" "$DISCO" eval fmnist-disco --ckpt "$OUT/fmnist-disco.model" \
    --baseline-ckpt "$OUT/fmnist-edm.model" --cnn-dir "$OUT" $EVAL --out "$OUT"
echo "== make demo-images: $(( $(date +%s) - start )) s in all; results in $OUT"
