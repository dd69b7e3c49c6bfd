#!/usr/bin/env bash
# The C and C++ side, end to end: the header check, the CMake build and its ctest suite, the
# install tree, the README's compile/link lines and CMake projects against it, and the release
# archive (the same again against the extracted archive). Part of scripts/test.sh.
# Usage: scripts/test-c-cpp.sh        (from anywhere inside the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
build=$root/target/cmake-build
prefix=$root/target/cmake-install
work=$root/target/cmake-consumers

step() { printf '\n== %s\n' "$*"; }

scripts/install-deps.sh

step "C header matches the C ABI crate (sources)"
python3 scripts/check-c-header.py

step "CMake: configure and build (cargo builds libghostmem)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_LIBDIR=lib >/dev/null
cmake --build "$build" -j"$jobs"

step "ctest: seed examples, C++ tests, C API test, header check, real clients (SQLite, Lua)"
ctest --test-dir "$build" -j"$jobs" --output-on-failure --timeout 300

step "cmake --install: the documented layout"
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in lib/libghostmem.so lib/libghostmem.a include/ghostmem/ghostmem.h \
  include/ghostmem/GhostMemoryManager.h include/ghostmem/GhostAllocator.h \
  include/ghostmem/Version.h bin/ghostmem_demo lib/pkgconfig/ghostmem.pc \
  lib/cmake/ghostmem/ghostmemConfig.cmake lib/cmake/ghostmem/ghostmemConfigVersion.cmake; do
  test -e "$prefix/$f" || { echo "missing from the install tree: $f"; exit 1; }
done
# grep reads a captured output, not a pipe: `cmd | grep -q` can fail under pipefail when grep
# exits at its first match and cmd then dies of SIGPIPE.
grep -q 'SONAME.*\[libghostmem.so\]' <<<"$(readelf -d "$prefix/lib/libghostmem.so")" ||
  { echo "libghostmem.so has no SONAME libghostmem.so"; exit 1; }
python3 scripts/check-c-header.py --lib "$prefix/lib/libghostmem.so"
"$prefix/bin/ghostmem_demo" --mib 4 --budget 16

# The README's blocks against a prefix: its compile/link lines (plain compiler, static,
# C, pkg-config), their output, and its find_package project.
readme_against() {
  local gm=$1 dir=$2
  step "README lines against $gm"
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 scripts/readme-blocks.py extract "$dir"
  (cd "$dir" && GM=$gm bash readme-run.sh) >"$dir/output.txt"
  cat "$dir/output.txt"
  python3 scripts/readme-blocks.py check-output "$dir/output.txt"

  step "find_package(ghostmem) against $gm"
  cp "$dir/main.cpp" "$dir/find_package/"
  cmake -S "$dir/find_package" -B "$dir/find_package/build" -DCMAKE_PREFIX_PATH="$gm" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$dir/find_package/build" -j"$jobs" >/dev/null
  "$dir/find_package/build/myapp"
  "$dir/find_package/build/myapp_shared"
  grep -q "libghostmem.so => $gm/lib/libghostmem.so" <<<"$(ldd "$dir/find_package/build/myapp_shared")" ||
    { echo "myapp_shared does not load $gm/lib/libghostmem.so"; exit 1; }
}
readme_against "$prefix" "$work/install"

step "add_subdirectory(GhostMem) from a program's source tree"
sub=$work/install/subdirectory
mkdir -p "$sub/external"
ln -s "$root" "$sub/external/GhostMem"
cp "$work/install/main.cpp" "$sub/"
cmake -S "$sub" -B "$sub/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$sub/build" -j"$jobs" >/dev/null
"$sub/build/myapp"

step "release archive"
scripts/release.sh "$root/target"
rm -rf "$work/release"
mkdir -p "$work/release"
tar -C "$work/release" -xzf target/ghostmem-linux-x64.tar.gz
top=$(cd "$work/release/ghostmem-linux-x64" && ls | sort | tr '\n' ' ')
[ "$top" = "README.md bin include lib " ] ||
  { echo "release archive layout: $top, expected: README.md bin include lib"; exit 1; }
"$work/release/ghostmem-linux-x64/bin/ghostmem_demo" --mib 4 --budget 16
readme_against "$work/release/ghostmem-linux-x64" "$work/release-consumer"

step "the guide's Linux Makefile and CMakeLists.txt with the release archive's files"
guide=$work/guide-project
rm -rf "$guide"
mkdir -p "$guide/src"
cp -r "$work/release/ghostmem-linux-x64/include" "$work/release/ghostmem-linux-x64/lib" "$guide/"
cp "$work/install/main.cpp" "$guide/src/main.cpp"
cp tests/cpp/guide-linux/Makefile tests/cpp/guide-linux/CMakeLists.txt "$guide/"
make -C "$guide" run
cmake -S "$guide" -B "$guide/build" >/dev/null
cmake --build "$guide/build" >/dev/null
LD_LIBRARY_PATH="$guide/lib" "$guide/build/myapp"

printf '\nC and C++: all checks passed\n'
