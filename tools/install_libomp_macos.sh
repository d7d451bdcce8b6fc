#!/usr/bin/env bash
# Install the OpenMP runtime the macOS wheels are built against and bundle:
# conda-forge's llvm-openmp 11.1.0, the build scikit-learn's macOS wheels ship
# in sklearn/.dylibs (the wheels load that copy when scikit-learn is installed
# next to gaussmix; see MACOS_LIBOMP_RPATHS in setup.py). It names itself
# @rpath/libomp.dylib and runs on macOS 10.9 (x86_64) / 11.0 (arm64) and later,
# so it does not raise the wheels' deployment target as Homebrew's libomp does.
#
# Usage: bash tools/install_libomp_macos.sh PREFIX   (then LIBOMP_PREFIX=PREFIX)
set -euo pipefail

PREFIX="${1:?usage: bash tools/install_libomp_macos.sh PREFIX}"
case "$(uname -m)" in
    arm64) URL="https://anaconda.org/conda-forge/llvm-openmp/11.1.0/download/osx-arm64/llvm-openmp-11.1.0-hf3c4609_1.tar.bz2" ;;
    x86_64) URL="https://anaconda.org/conda-forge/llvm-openmp/11.1.0/download/osx-64/llvm-openmp-11.1.0-hda6cdc1_1.tar.bz2" ;;
    *) echo "unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

mkdir -p "$PREFIX"
ARCHIVE="$(mktemp -t llvm-openmp)"
curl --fail --silent --show-error --location --retry 3 -o "$ARCHIVE" "$URL"
echo "llvm-openmp archive sha256: $(shasum -a 256 "$ARCHIVE" | cut -d' ' -f1)"
tar -xjf "$ARCHIVE" -C "$PREFIX"
rm -f "$ARCHIVE"
test -f "$PREFIX/include/omp.h" && test -f "$PREFIX/lib/libomp.dylib"
otool -D "$PREFIX/lib/libomp.dylib"
