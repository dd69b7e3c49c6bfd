#!/usr/bin/env bash
# Mutation testing with cargo-mutants (installed with `cargo install --locked` when missing):
# mutate the given files of the engine crate one change at a time and run the engine's unit
# tests against each mutant. Too slow for every CI run; see docs/mutants.md.
#
# Usage: scripts/mutants.sh FILE... [-- CARGO_TEST_ARGS...]
#   FILE             a file of crates/ghostmem (repeat for more)
#   CARGO_TEST_ARGS  what `cargo test -p ghostmem` builds and runs for each mutant (default:
#                    --lib, the unit tests; pass e.g. `-- --lib --test shadow_model` for more)
#   MUTANTS_ARGS     (environment) more cargo-mutants options, e.g.
#                    MUTANTS_ARGS="--timeout 30 --shard 0/8 --sharding round-robin"
#   MUTANTS_OUTPUT   (environment) where mutants.out goes (default: target), so that two runs
#                    can go on at once
# Output: $MUTANTS_OUTPUT/mutants.out (cargo-mutants' logs, outcomes.json, caught.txt,
# missed.txt, unviable.txt, timeout.txt), and a per-file summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

files=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  files+=("$1")
  shift
done
[ $# -gt 0 ] && shift
test_args=("$@")
[ ${#test_args[@]} -gt 0 ] || test_args=(--lib)
if [ ${#files[@]} -eq 0 ]; then
  echo "usage: scripts/mutants.sh FILE... [-- CARGO_TEST_ARGS...]" >&2
  exit 2
fi

if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install --locked cargo-mutants
fi

# The test arguments go to every cargo command (`--cargo-arg`), so each mutant builds only the
# test targets that will run, not every integration test of the crate.
cargo_args=()
for a in "${test_args[@]}"; do
  cargo_args+=(--cargo-arg "$a")
done
read -r -a extra_args <<<"${MUTANTS_ARGS:-}"

file_args=()
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "mutants.sh: no such file: $f" >&2; exit 2; }
  file_args+=(--file "$f")
done

out="${MUTANTS_OUTPUT:-target}"
echo "cargo mutants $(cargo mutants --version | awk '{print $2}'), $(date -u +%Y-%m-%d)"
echo "+ cargo mutants --package ghostmem --test-package ghostmem ${file_args[*]} --output $out --jobs 1 ${cargo_args[*]} ${extra_args[*]}"
status=0
cargo mutants --package ghostmem --test-package ghostmem "${file_args[@]}" --output "$out" \
  --jobs 1 "${cargo_args[@]}" "${extra_args[@]}" || status=$?

# Per file: caught (killed or timed out), missed, unviable, and the caught share of the viable.
python3 - "$out/mutants.out/outcomes.json" <<'PY'
import collections, json, sys
outcomes = json.load(open(sys.argv[1]))["outcomes"]
per_file = collections.defaultdict(collections.Counter)
for o in outcomes:
    scenario = o["scenario"]
    if not isinstance(scenario, dict):
        continue  # the baseline
    summary = o["summary"]
    kind = {"CaughtMutant": "caught", "MissedMutant": "missed", "Unviable": "unviable",
            "Timeout": "timeout"}.get(summary, summary)
    per_file[scenario["Mutant"]["file"]][kind] += 1
print(f"{'file':45} caught missed timeout unviable  caught/viable")
for f, c in sorted(per_file.items()):
    viable = c["caught"] + c["missed"] + c["timeout"]
    share = f"{100 * (c['caught'] + c['timeout']) / viable:.0f} %" if viable else "-"
    print(f"{f:45} {c['caught']:6} {c['missed']:6} {c['timeout']:7} {c['unviable']:8}  {share:>13}")
PY
exit "$status"
