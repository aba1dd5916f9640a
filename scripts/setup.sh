#!/usr/bin/env bash
# Sets up starsynth on a fresh Debian 12 machine: installs the Debian packages it builds against,
# fetches the corpora the examples train on (unpacked from Debian packages, never installed),
# then configures and builds. Safe to run again: each step is skipped when already done.
#
#   scripts/setup.sh [--no-data] [--no-build] [--build-dir DIR]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$root/build"
data_dir="$root/data"
want_data=1
want_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-data) want_data=0 ;;
    --no-build) want_build=0 ;;
    --build-dir) build_dir=$2; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'setup: %s\n' "$*" >&2; exit 1; }
trap 'fail "failed at line $LINENO: $BASH_COMMAND"' ERR

[ -r /etc/debian_version ] || fail "this script expects Debian 12 (no /etc/debian_version here)"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "run as root or install sudo"
  sudo=sudo
fi

# ---- Debian packages --------------------------------------------------------------------------
# libopenblas0-pthread: Debian's LibTorch only recommends a BLAS, and the reference one makes CPU
# training about 10x slower (DESIGN.md).
packages=(build-essential cmake ninja-build pkg-config
          libtorch-dev libopenblas0-pthread
          libprotobuf-dev protobuf-compiler
          libboost-dev libboost-graph-dev
          libpagmo-dev
          libopenmpi-dev openmpi-bin
          libgtest-dev libgmock-dev
          graphviz
          chromium)   # headless, for the test that renders `starsynth report`
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${#missing[@]} Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  step "Debian packages: all ${#packages[@]} present"
fi

# ---- corpora (../shared/DATA.md) --------------------------------------------------------------
check_sha() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

fetch_deb() {  # fetch_deb PACKAGE DEST: downloads the .deb and unpacks it into DEST
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download "$1" >/dev/null 2>&1) ||
    { $sudo apt-get update -qq && (cd "$tmp" && apt-get download "$1" >/dev/null); } ||
    fail "cannot download Debian package $1 (is the package archive reachable?)"
  dpkg-deb -x "$tmp"/"$1"_*.deb "$2"
  rm -rf "$tmp"
}

if [ "$want_data" = 1 ]; then
  mkdir -p "$data_dir"
  ecoli="$data_dir/ecoli-mg1655.fasta"
  ecoli_sha=3d70cf9dee928a6bf8f4763a3db0e0f8bf0ae32d25123a73f7a5bf2fe4d16828
  if check_sha "$ecoli" "$ecoli_sha"; then
    step "corpus: $ecoli present"
  else
    step "corpus: E. coli K-12 MG1655 genome from ragout-examples"
    unpack=$(mktemp -d)
    fetch_deb ragout-examples "$unpack"
    gzip -dc "$unpack/usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz" >"$ecoli.tmp"
    rm -rf "$unpack"
    check_sha "$ecoli.tmp" "$ecoli_sha" || fail "E. coli FASTA has an unexpected SHA-256"
    mv "$ecoli.tmp" "$ecoli"
  fi
  kjv="$data_dir/kjv.txt"
  kjv_sha=6f74f5589333c56c263963e6347dba662bae2d96861302e690aaae0b4a855eda
  if check_sha "$kjv" "$kjv_sha"; then
    step "corpus: $kjv present"
  else
    step "corpus: King James Bible text from bible-kjv and bible-kjv-text"
    unpack=$(mktemp -d)
    fetch_deb bible-kjv "$unpack"
    fetch_deb bible-kjv-text "$unpack"
    "$unpack/usr/bin/bible" -l100000 -p "$unpack/usr/lib" "Gen1:1-Rev22:21" >"$kjv.tmp"
    rm -rf "$unpack"
    check_sha "$kjv.tmp" "$kjv_sha" || fail "KJV text has an unexpected SHA-256"
    mv "$kjv.tmp" "$kjv"
  fi
  ls -l "$data_dir" | sed 1d
fi

# ---- configure and build ----------------------------------------------------------------------
if [ "$want_build" = 1 ]; then
  step "configuring in $build_dir"
  mkdir -p "$build_dir"
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build_dir/configure.log" 2>&1 ||
    { tail -20 "$build_dir/configure.log" >&2; fail "cmake configure failed (log: $build_dir/configure.log)"; }
  grep "starsynth:" "$build_dir/configure.log" || true
  step "building ($(nproc) jobs)"
  cmake --build "$build_dir" -j "$(nproc)"
  step "done: $build_dir/starsynth"
fi
