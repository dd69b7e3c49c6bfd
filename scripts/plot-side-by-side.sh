#!/usr/bin/env bash
# Ghost memory, plain memory and (optionally) the kernel's zram side by side, on the `rand` and
# `hot` workloads, drawn in one figure (touch latency CDFs, fill and scan throughput).
#
# Usage: scripts/plot-side-by-side.sh [options]
#   --size SIZE        region (default 256MiB)
#   --budget SIZE      ghost memory's resident budget, and zram's memory cgroup limit (16MiB)
#   --hot SIZE         hot set of the `hot` workload (default: half the budget)
#   --hot-fraction F   touches that go to the hot set (0.9)
#   --touches N        timed touches per run (200000)
#   --threads N        worker threads (1)
#   --zram SCRIPT      a zram baseline script (also: ZRAM_BASELINE=SCRIPT); needs root. It is
#                      called as `SCRIPT setup`, `SCRIPT run LIMIT -- CMD...` and
#                      `SCRIPT teardown` (teardown only if this script did the setup).
#   --dir DIR          where the JSON of each run goes (target/side-by-side)
#   --out FILE.svg     the figure (docs/figures/side-by-side.svg)
#   GHOSTMEM=PATH      use this ghostmem binary instead of building the release one
#
# Every run verifies its data; a run that fails (for zram: killed by the cgroup's OOM killer)
# is left out of the figure with a warning, and the script exits 1 at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

size=256MiB budget=16MiB hot="" fraction=0.9 touches=200000 threads=1
zram=${ZRAM_BASELINE:-} dir=target/side-by-side out=docs/figures/side-by-side.svg
die() { echo "plot-side-by-side: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=${2:?}; shift 2 ;;
    --budget) budget=${2:?}; shift 2 ;;
    --hot) hot=${2:?}; shift 2 ;;
    --hot-fraction) fraction=${2:?}; shift 2 ;;
    --touches) touches=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --zram) zram=${2:?}; shift 2 ;;
    --dir) dir=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# Bytes of a size as the CLI takes it (4096, 64K, 64KiB, 16M, 16MiB, 1G, 1GiB).
bytes() {
  local n unit
  [[ "$1" =~ ^([0-9]+)\ ?([A-Za-z]*)$ ]] || die "not a size: '$1'"
  n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2],,}
  case "$unit" in
    ""|b) echo "$n" ;;
    k|kib) echo $((n << 10)) ;;
    m|mib) echo $((n << 20)) ;;
    g|gib) echo $((n << 30)) ;;
    *) die "unknown unit in '$1'" ;;
  esac
}
budget_bytes=$(bytes "$budget")
hot=${hot:-$((budget_bytes / 2))}

if [ -n "${GHOSTMEM:-}" ]; then
  gm=$GHOSTMEM
else
  cargo build --release --quiet -p ghostmem-cli
  gm=$PWD/target/release/ghostmem
fi

if [ -n "$zram" ]; then
  [ -x "$zram" ] || die "zram baseline script '$zram' is not an executable file"
  [ "$(id -u)" = 0 ] || die "--zram needs root (a memory cgroup and a swap device)"
fi

mkdir -p "$dir" "$(dirname "$out")"
rm -f "$dir"/*.json
failed=0
set_up_zram=no
cleanup() {
  if [ "$set_up_zram" = yes ]; then "$zram" teardown >/dev/null || true; fi
}
trap cleanup EXIT

# run NAME WORKLOAD MEMORY: one run, its JSON in $dir/NAME-WORKLOAD.json; the command is
# prefixed with the words in the array `prefix` (the zram baseline script's `run LIMIT --`).
prefix=()
run() {
  local name=$1 workload=$2 memory=$3
  local file=$dir/$name-$workload.json
  local args=(bench --workload "$workload" --memory "$memory" --size "$size"
    --budget "$budget" --touches "$touches" --threads "$threads" --label "$name" --json)
  if [ "$workload" = hot ]; then args+=(--hot "$hot" --hot-fraction "$fraction"); fi
  echo "== $name $workload" >&2
  "${prefix[@]}" "$gm" "${args[@]}" >"$file" && return
  local rc=$?
  echo "plot-side-by-side: $name $workload failed (exit $rc); left out of the figure" >&2
  rm -f "$file"
  failed=1
}

if [ -n "$zram" ]; then
  grep -q '^/dev/zram0' /proc/swaps || set_up_zram=yes
  "$zram" setup >&2
fi
for workload in rand hot; do
  prefix=()
  run ghost "$workload" ghost
  run plain "$workload" plain
  if [ -n "$zram" ]; then
    prefix=("$zram" run "$budget_bytes" --)
    run zram "$workload" plain
  fi
done

files=()
for name in ghost plain zram; do
  for workload in rand hot; do
    if [ -f "$dir/$name-$workload.json" ]; then files+=("$dir/$name-$workload.json"); fi
  done
done
[ ${#files[@]} -gt 0 ] || die "no run succeeded"
s=""
if [ "$threads" != 1 ]; then s=s; fi
title="$size region, $threads thread$s: ghost memory with a $budget budget, plain memory"
if [ -n "$zram" ]; then title+=", zram swap in a $budget memory cgroup"; fi
"$gm" plot --title "$title" --out "$out" "${files[@]}"
echo "wrote $out from ${#files[@]} runs (JSON in $dir)" >&2
exit "$failed"
