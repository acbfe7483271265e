# torch_env.sh — sourced by the *_vs_torch.sh benchmarks: the PyTorch configurations every
# comparison runs, interleaved with disco, the checks before a run, the median of a column, and
# the table of interleaved runs of the toy benchmarks.
#   default: PyTorch as installed (glibc malloc returns freed memory to the system, and the
#            page faults of getting it back dominate PyTorch's CPU time here);
#   tuned:   the allocator keeps its memory (glibc's MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_
#            and MALLOC_TOP_PAD_, as Intel's CPU tuning guide recommends to PyTorch users).
# Both run OpenBLAS on one thread (PyTorch's own pool runs the threads; two pools on 2 cores
# cost 3x) without the machine's OpenBLAS core / L2 overrides. The ratio that counts is
# disco's against PyTorch's fastest configuration.
TORCH_PY=/usr/bin/python3
TORCH_CONFIGS="default tuned"

# The checks a comparison makes before it runs (die() is the caller's): a disco binary at
# $DISCO, PyTorch importable from $TORCH_PY, RUNS a positive integer (when the comparison has
# RUNS)
check_disco_and_torch() {
    [ -x "$DISCO" ] || die "no disco binary at $DISCO (run make or make bench, or set DISCO)"
    "$TORCH_PY" -c 'import torch' 2>/dev/null || die "PyTorch is not importable from $TORCH_PY (apt-get install python3-torch)"
    [ -z "${RUNS+set}" ] || [ "$RUNS" -ge 1 ] 2>/dev/null || die "RUNS must be a positive integer"
}

# torch_env CONFIG: the variables a PyTorch run of that configuration starts with
torch_env() {
    case "$1" in
    default) echo "OPENBLAS_NUM_THREADS=1" ;;
    tuned) echo "OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456" ;;
    *) echo "torch_env: unknown configuration $1" >&2; exit 2 ;;
    esac
}

# torch_py CONFIG ARGS...: runs $TORCH_PY ARGS in that configuration
torch_py() {
    cfg=$1
    shift
    # shellcheck disable=SC2046 # the variables are words on purpose
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(torch_env "$cfg") "$TORCH_PY" "$@"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_table RUNS COLUMNS: RUNS rounds over the columns, each MODEL-disco (the caller's
# `disco_run MODEL`) or MODEL-CONFIG (the caller's `torch_run MODEL CONFIG`), which print one
# number; prints a row per round and the medians, and keeps each column's numbers in $tmp/COLUMN
run_table() {
    printf '%-9s' run
    for c in $2; do printf ' %14s' "$c"; done
    echo
    i=1
    while [ "$i" -le "$1" ]; do
        printf '%-9s' "$i"
        for c in $2; do
            m=${c%-*} who=${c##*-}
            if [ "$who" = disco ]; then v=$(disco_run "$m"); else v=$(torch_run "$m" "$who"); fi
            [ -n "$v" ] || { echo "run_table: $c printed no number" >&2; exit 2; }
            echo "$v" >>"$tmp/$c"
            printf ' %14s' "$v"
        done
        echo
        i=$((i + 1))
    done
    printf '%-9s' median
    for c in $2; do printf ' %14s' "$(median <"$tmp/$c")"; done
    echo
}
