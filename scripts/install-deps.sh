#!/usr/bin/env bash
# Install what the C and C++ build and tests need: cmake, g++ (with gcc), make, pkg-config
# and python3.
# Debian/Ubuntu (apt-get). Installs only what is missing; needs root for that, otherwise it
# prints what to install and exits 1.
set -euo pipefail

declare -A package_for=([cmake]=cmake [g++]=g++ [gcc]=gcc [make]=make [pkg-config]=pkg-config [python3]=python3)
missing=()
for tool in cmake g++ gcc make pkg-config python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_for[$tool]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: cmake, g++, gcc, make, pkg-config and python3 are present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; install them, e.g.: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in cmake g++ gcc make pkg-config python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-deps: $tool still missing" >&2; exit 1; }
done
echo "install-deps: done"
