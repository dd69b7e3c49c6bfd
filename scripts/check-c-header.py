#!/usr/bin/env python3
"""Fail when the hand-written C and C++ headers no longer match the Rust sources.

Checks, between include/ghostmem/ghostmem.h and crates/ghostmem-capi/src/*.rs:
  - the functions: names, return types, parameter types and names;
  - the fields of ghostmem_config_t, in order, with their types;
  - the status codes (names and values);
the statistics against their one list (`__stats_fields!` in crates/ghostmem/src/stats.rs, from
which Stats, the engine's counters and the C ABI's ghostmem_stats_t are generated):
  - ghostmem_stats_t in ghostmem.h: the same fields in the same order, all uint64_t;
  - include/ghostmem/GhostMemoryManager.h: GetMemoryStats() reads every field exactly once
    (`out.member = s.field;`) and sets every GhostMemoryStats member exactly once;
and, with --lib, that the ghostmem_* symbols the shared library exports are exactly the
functions the header declares.

Usage: scripts/check-c-header.py [--lib path/to/libghostmem.so]
"""

import argparse
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER = ROOT / "include/ghostmem/ghostmem.h"
CXX_HEADER = ROOT / "include/ghostmem/GhostMemoryManager.h"
SRC = ROOT / "crates/ghostmem-capi/src"
STATS_RS = ROOT / "crates/ghostmem/src/stats.rs"

RUST_TO_C = {
    "usize": "size_t",
    "bool": "bool",
    "u32": "uint32_t",
    "u64": "uint64_t",
    "i32": "int32_t",
    "c_char": "char",
    "c_void": "void",
}


def rust_type_to_c(t):
    t = t.strip()
    m = re.fullmatch(r"\*(mut|const)\s+(.+)", t)
    if m:
        inner = rust_type_to_c(m.group(2))
        return ("const " if m.group(1) == "const" else "") + inner + " *"
    return RUST_TO_C.get(t, t)


def norm_c_type(t):
    t = re.sub(r"\s+", " ", t.strip())
    t = re.sub(r"\s*\*", " *", t)
    return t


def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def split_c_param(p):
    m = re.fullmatch(r"(.*?[\s\*])(\w+)", p.strip())
    if not m:
        raise SystemExit(f"cannot parse C parameter {p!r}")
    return norm_c_type(m.group(1)), m.group(2)


def header_functions(text):
    funcs = {}
    text = re.sub(r"(?m)^\s*#.*$", " ", text)  # preprocessor lines are not declarations
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(ghostmem_\w+)\s*\(([^)]*)\)\s*;", text):
        ret, name, params = norm_c_type(m.group(1)), m.group(2), m.group(3).strip()
        args = [] if params in ("", "void") else [split_c_param(p) for p in params.split(",")]
        funcs[name] = (ret, args)
    return funcs


def rust_functions(text):
    funcs = {}
    pattern = r'pub\s+(?:unsafe\s+)?extern\s+"C"\s+fn\s+(ghostmem_\w+)\s*\(([^)]*)\)\s*(?:->\s*([^{]+?))?\s*\{'
    for m in re.finditer(pattern, text, flags=re.S):
        name, params, ret = m.group(1), m.group(2).strip().rstrip(","), m.group(3)
        args = []
        if params:
            for p in params.split(","):
                pname, ptype = p.split(":", 1)
                args.append((norm_c_type(rust_type_to_c(ptype)), pname.strip()))
        funcs[name] = (norm_c_type(rust_type_to_c(ret)) if ret else "void", args)
    return funcs


def header_struct(text, tag):
    m = re.search(r"typedef\s+struct\s+" + tag + r"\s*\{(.*?)\}\s*" + tag + r"_t\s*;", text, re.S)
    if not m:
        raise SystemExit(f"struct {tag}_t not found in the header")
    fields = []
    for decl in m.group(1).split(";"):
        if decl.strip():
            fields.append(split_c_param(decl))
    return [(n, t) for t, n in fields]


def rust_struct(text, name):
    m = re.search(r"pub\s+struct\s+" + name + r"\s*\{(.*?)\n\}", text, re.S)
    if not m:
        raise SystemExit(f"struct {name} not found in the Rust sources")
    body = re.sub(r"//[^\n]*", "", m.group(1))
    return [
        (f.group(1), norm_c_type(rust_type_to_c(f.group(2))))
        for f in re.finditer(r"pub\s+(\w+)\s*:\s*([^,]+),", body)
    ]


def stats_fields():
    """The statistics fields, in order, from the `__stats_fields!` list."""
    text = STATS_RS.read_text()
    m = re.search(r"macro_rules!\s+__stats_fields\s*\{(.*?)\n\}", text, re.S)
    if not m:
        raise SystemExit(f"__stats_fields! not found in {STATS_RS.relative_to(ROOT)}")
    fields = re.findall(r"^\s*(\w+):\s*(?:counter|derived),\s*$", m.group(1), re.M)
    if not fields:
        raise SystemExit("__stats_fields! lists no fields")
    return fields


def cxx_stats_problems(text, fields):
    """GhostMemoryStats and GetMemoryStats() against the statistics list."""
    problems = []
    m = re.search(r"struct\s+GhostMemoryStats\s*\{(.*?)\};", text, re.S)
    b = re.search(r"GhostMemoryStats\s+GetMemoryStats\(\)\s*const\s*\{(.*?)\n    \}", text, re.S)
    if not m or not b:
        return ["GhostMemoryStats or GetMemoryStats() not found"]
    members = re.findall(r"std::uint64_t\s+(\w+)\s*=\s*0\s*;", m.group(1))
    pairs = re.findall(r"\bout\.(\w+)\s*=\s*s\.(\w+)\s*;", b.group(1))
    set_members = [o for o, _ in pairs]
    read_fields = [f for _, f in pairs]
    for f in fields:
        if read_fields.count(f) != 1:
            problems.append(f"GetMemoryStats() reads s.{f} {read_fields.count(f)} times (expected once)")
    for f in sorted(set(read_fields) - set(fields)):
        problems.append(f"GetMemoryStats() reads s.{f}, which is not a statistics field")
    for o in members:
        if set_members.count(o) != 1:
            problems.append(f"GetMemoryStats() sets out.{o} {set_members.count(o)} times (expected once)")
    for o in sorted(set(set_members) - set(members)):
        problems.append(f"GetMemoryStats() sets out.{o}, which GhostMemoryStats does not declare")
    return problems


def compare(what, header, rust, problems):
    if header != rust:
        problems.append(f"{what} differ:\n  header: {header}\n  rust:   {rust}")


def exported_symbols(lib):
    out = subprocess.run(
        ["nm", "-D", "--defined-only", str(lib)], check=True, capture_output=True, text=True
    ).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "T" and parts[2].startswith("ghostmem_"):
            syms.add(parts[2])
    return syms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lib", help="libghostmem.so (or libghostmem_capi.so) to read exports from")
    args = ap.parse_args()

    header = strip_c_comments(HEADER.read_text())
    rust = "\n".join(p.read_text() for p in sorted(SRC.glob("*.rs")))
    problems = []

    hf, rf = header_functions(header), rust_functions(rust)
    for name in sorted(set(hf) | set(rf)):
        if name not in hf:
            problems.append(f"{name}: exported by the crate, not declared in the header")
        elif name not in rf:
            problems.append(f"{name}: declared in the header, not exported by the crate")
        else:
            compare(f"{name}: signatures (return, [(type, name)])", hf[name], rf[name], problems)

    compare("ghostmem_config_t fields", header_struct(header, "ghostmem_config"),
            rust_struct(rust, "ghostmem_config_t"), problems)
    fields = stats_fields()
    compare("ghostmem_stats_t fields (header) vs __stats_fields! (rust)",
            header_struct(header, "ghostmem_stats"), [(f, "uint64_t") for f in fields], problems)
    cxx = cxx_stats_problems(strip_c_comments(CXX_HEADER.read_text()), fields)
    problems += [f"{CXX_HEADER.relative_to(ROOT)}: {p}" for p in cxx]

    hc = dict(re.findall(r"\b(GHOSTMEM_(?:OK|ERR_\w+))\s*=\s*(\d+)", header))
    rc = dict(re.findall(r"pub\s+const\s+(GHOSTMEM_(?:OK|ERR_\w+))\s*:\s*ghostmem_status_t\s*=\s*(\d+)", rust))
    compare("status codes", sorted(hc.items()), sorted(rc.items()), problems)

    if args.lib:
        syms = exported_symbols(args.lib)
        compare(f"functions (header) vs symbols exported by {args.lib} (rust)", sorted(hf), sorted(syms), problems)

    if problems:
        print("the C or C++ header is stale:", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        return 1
    checked = f"{len(hf)} functions, 2 structs, {len(hc)} status codes, {len(fields)} statistics in C and C++"
    if args.lib:
        checked += f", {len(syms)} exported symbols"
    print(f"ok: {HEADER.relative_to(ROOT)} matches the C ABI crate ({checked})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
