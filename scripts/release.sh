#!/usr/bin/env bash
# Build the release archive with the documented layout:
#
#   ghostmem-linux-x64/
#   ├── lib/        libghostmem.so, libghostmem.a, pkgconfig/ghostmem.pc, cmake/ghostmem/
#   ├── include/    ghostmem/{ghostmem.h, GhostMemoryManager.h, GhostAllocator.h, Version.h}
#   ├── bin/        ghostmem_demo
#   └── README.md
#
# Usage: scripts/release.sh [OUTPUT_DIR]    (default: target/) -> OUTPUT_DIR/ghostmem-linux-x64.tar.gz
# Debug information is stripped from the libraries and the demo. The .pc file and the CMake
# package locate the prefix relative to themselves, so the extracted tree can live anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${1:-target}
mkdir -p "$out"
out=$(cd "$out" && pwd)

name=ghostmem-linux-x64
build=target/release-cmake
stage=target/release-stage
rm -rf "$stage"
mkdir -p "$stage"

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGHOSTMEM_BUILD_TESTS=OFF \
  -DGHOSTMEM_BUILD_DEMO=ON -DGHOSTMEM_INSTALL=ON -DCMAKE_INSTALL_LIBDIR=lib \
  -DCMAKE_INSTALL_INCLUDEDIR=include -DCMAKE_INSTALL_BINDIR=bin >/dev/null
cmake --build "$build" -j"$(nproc)"
cmake --install "$build" --prefix "$stage/$name" >/dev/null

strip --strip-debug "$stage/$name/lib/libghostmem.a" "$stage/$name/lib/libghostmem.so"
strip "$stage/$name/bin/ghostmem_demo"
sed "s/@VERSION@/$(grep -m1 -oE '^version = "[0-9.]+"' Cargo.toml | grep -oE '[0-9.]+')/" \
  cmake/package-README.md >"$stage/$name/README.md"

tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
echo "release: $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1))"
tar -tzf "$out/$name.tar.gz" | sed 's/^/  /'
cd "$root"
