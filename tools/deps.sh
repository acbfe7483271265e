#!/bin/sh
# deps.sh — installs the Debian packages disco needs that are missing; silent when all are
# present. Run by `make deps` and before every build.
pkgs="llvm-19-dev libdnnl-dev libxxhash-dev zlib1g-dev libpng-dev dataset-fashion-mnist python3-numpy"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing missing Debian packages:$missing" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2 || { echo "deps: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
$sudo apt-get install -y -qq $missing >&2 || { echo "deps: apt-get install$missing failed" >&2; exit 1; }
