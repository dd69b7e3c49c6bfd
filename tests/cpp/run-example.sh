#!/bin/sh
# Run a test program and check its exit status and (optionally) its output.
# Usage: run-example.sh [--status 0[,1...]] [--output ERE] -- program [args...]
# A process killed by signal N has status 128+N (SIGSEGV: 139).
statuses=0
pattern=
while [ $# -gt 0 ]; do
  case "$1" in
    --status) statuses=$2; shift 2 ;;
    --output) pattern=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "run-example.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
case ",$statuses," in
  *",$rc,"*) ;;
  *) echo "run-example.sh: exit status $rc, expected one of $statuses"; exit 1 ;;
esac
if [ -n "$pattern" ] && ! printf '%s\n' "$out" | grep -Eq "$pattern"; then
  echo "run-example.sh: output does not match: $pattern"
  exit 1
fi
exit 0
