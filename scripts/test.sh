#!/usr/bin/env bash
# The project's test command: everything CI checks, on a fresh machine.
# Usage: scripts/test.sh        (from anywhere inside the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "unit, property, integration and doc tests (default backend: userfaultfd where allowed)"
cargo test --workspace

step "the same tests on the mprotect backend (GHOSTMEM_BACKEND=mprotect)"
GHOSTMEM_BACKEND=mprotect cargo test --workspace

# Ignored in a plain `cargo test` because it needs privileges a developer's machine may not
# grant; here it runs, and fails if they are missing (unshare comes with util-linux).
step "write failures on a 64 KiB tmpfs (unshare --mount)"
cargo test -p ghostmem --test disk_mode -- --ignored --exact write_failures_keep_every_value_and_are_counted

# Ignored in a plain `cargo test` because it needs root (to drop privileges in a child); here it
# runs, and fails without root.
step "kernel-access mode refused without the privilege (a child that drops root)"
cargo test -p ghostmem --test kernel_access -- --ignored --exact without_the_privilege_creation_fails_and_says_what_to_change

step "build release binaries and examples"
cargo build --release --workspace --examples --bins --quiet
for ex in global_allocator allocator_api; do
  step "example $ex"
  "target/release/examples/$ex"
done

step "C and C++: cmake, g++ and pkg-config (installed with apt-get when missing)"
scripts/install-deps.sh

step "C and C++: header check, CMake build, ctest, install tree, README lines, release archive"
scripts/test-c-cpp.sh

step "C and C++: ctest again on the mprotect backend"
GHOSTMEM_BACKEND=mprotect ctest --test-dir target/cmake-build -j"$(nproc)" --output-on-failure --timeout 300

step "acceptance: seq bench, 256 MiB under a 16 MiB budget"
target/release/ghostmem bench --workload seq --size 256MiB --budget 16MiB --json | tee target/bench-seq.json
python3 - target/bench-seq.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
budget_kib = r["budget_bytes"] / 1024
limit = budget_kib + r["compressed_bytes"] / 1024 + 16 * 1024
assert r["verified"] is True, "bench did not verify its data"
assert r["rss_peak_kib"] <= limit, f"rss_peak_kib {r['rss_peak_kib']} > budget + compressed + 16 MiB = {limit:.0f}"
print(f"ok: verified, rss_peak_kib {r['rss_peak_kib']} <= {limit:.0f}")
PY

for backend in userfaultfd mprotect userfaultfd-thread; do
  step "acceptance: stress on $backend, 4 threads, 8-page budget, 20 s"
  target/release/ghostmem stress --threads 4 --budget 8 --seconds 20 --backend "$backend"
  step "acceptance: stress on $backend with the background evictor, 8 threads, 64-page budget, 10 s"
  target/release/ghostmem stress --threads 8 --budget 64 --seconds 10 --backend "$backend" --evictor
done
# Spare pages are used only while moving pages is fast, which it is not with several threads
# on a VM: force them, so that the moves are tested under concurrency too.
step "acceptance: stress on userfaultfd with spare pages always used (GHOSTMEM_SPARES=always), 4 threads, 10 s"
GHOSTMEM_SPARES=always target/release/ghostmem stress --threads 4 --budget 8 --seconds 10 --backend userfaultfd
step "acceptance: the same with the background evictor, 8 threads, 64-page budget, 10 s"
GHOSTMEM_SPARES=always target/release/ghostmem stress --threads 8 --budget 64 --seconds 10 --backend userfaultfd --evictor

printf '\nall checks passed\n'
