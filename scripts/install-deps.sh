#!/usr/bin/env bash
# Install what the C and C++ build and tests need: cmake, g++ (with gcc), make, pkg-config and
# python3, and the libraries of the real-client examples (examples/clients): SQLite
# (libsqlite3-dev) and Lua 5.4 (liblua5.4-dev), found through pkg-config.
# Debian/Ubuntu (apt-get). Installs only what is missing; needs root for that, otherwise it
# prints what to install and exits 1.
set -euo pipefail

tools=(cmake g++ gcc make pkg-config python3)
declare -A package_for=([cmake]=cmake [g++]=g++ [gcc]=gcc [make]=make [pkg-config]=pkg-config [python3]=python3)
# pkg-config module -> Debian package.
modules=(sqlite3 lua5.4)
declare -A package_for_module=([sqlite3]=libsqlite3-dev [lua5.4]=liblua5.4-dev)

find_missing() {
  missing=()
  for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${package_for[$tool]}")
  done
  for module in "${modules[@]}"; do
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "$module"; then
      missing+=("${package_for_module[$module]}")
    fi
  done
}

find_missing
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: ${tools[*]} and the pkg-config modules ${modules[*]} are present"
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
find_missing
if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: still missing ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: done"
