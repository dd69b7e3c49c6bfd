#!/usr/bin/env python3
"""Real clients (examples/clients): SQLite and Lua 5.4 on plain malloc and on ghost memory.

Each client program runs one mode per process and prints one JSON line (examples/clients/
client.h lists its fields). This script runs them and compares.

Usage:
  clients-bench.py check BINARY [--scale F] [--budget-mib N]
      One plain run and one ghost run at a small size (ctest's client.* tests): the results'
      checksums must be identical and the ghost statistics sane.
  clients-bench.py bench [--build DIR] [--reps N] [--scale F] [--clients sqlite,lua]
      Full size, plain and ghost side by side: per client, a plain run sets the budget to a
      sixth of its VmHWM, then N plain and N ghost runs alternate; prints the medians as a
      table, with ghost HWM / plain HWM against the issue's targets. Builds the CMake project
      in DIR first (default target/cmake-build, the one scripts/test-c-cpp.sh uses). With
      --save FILE, every run's JSON line goes to FILE (else to stderr).
  clients-bench.py table FILE
      The table again from a file that bench --save wrote.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The targets: ghost HWM / plain HWM at a budget of a sixth of plain's HWM.
TARGETS = {"sqlite": 0.6, "lua": 0.45}


def run(binary, mode, scale, budget_mib=None):
    cmd = [str(binary), "--mode", mode, "--scale", str(scale)]
    if budget_mib is not None:
        cmd += ["--budget-mib", f"{budget_mib:g}"]
    env = dict(os.environ, GHOSTMEM_MAX_PAGES="", GHOSTMEM_LOG="")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit status {p.returncode}\n{p.stdout}{p.stderr}")
    if p.stderr:
        # The malloc-shaped calls warn on stderr when they refuse a pointer.
        sys.exit(f"{' '.join(cmd)}: unexpected output on stderr:\n{p.stderr}")
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if len(lines) != 1:
        sys.exit(f"{' '.join(cmd)}: expected one JSON line, got:\n{p.stdout}")
    return json.loads(lines[0])


def sanity(plain, ghost):
    """What must hold between a plain and a ghost run of the same workload."""
    problems = []
    if plain["checksum"] != ghost["checksum"]:
        problems.append(f"checksums differ: plain {plain['checksum']}, ghost {ghost['checksum']}")
    g = ghost["ghost"]
    page = g["page_size"]
    held = g["allocated_pages"] * page
    checks = [
        (g["invalid_frees"] == 0, "invalid_frees is not 0"),
        (g["live_allocations"] > 0 and g["live_bytes"] > 0, "no live allocations"),
        (g["live_bytes"] <= held, "live_bytes exceeds the allocated pages"),
        # The heap's size classes (issue 7): at most 1.25x per class; whole runs add a little.
        (held <= 1.3 * g["live_bytes"] + 64 * page,
         f"allocated pages hold {held / g['live_bytes']:.2f}x live_bytes"),
        (g["resident_pages"] <= g["budget_pages"], "more pages resident than the budget"),
        (held > 2 * g["budget_pages"] * page, "the workload does not exceed twice the budget"),
        (g["evictions"] > 0 and g["restores"] > 0, "nothing was evicted and restored"),
        (g["compressed_bytes"] <= g["original_bytes"], "compressed_bytes exceeds original_bytes"),
        (g["store_reserved_bytes"] >= g["compressed_bytes"],
         "the store reserves less than it holds"),
        (g["evicted_pages"] * page >= g["original_bytes"],
         "original_bytes exceeds the evicted pages"),
    ]
    problems += [msg for ok, msg in checks if not ok]
    return problems


def check(args):
    plain = run(args.binary, "plain", args.scale)
    ghost = run(args.binary, "ghost", args.scale, args.budget_mib)
    print(json.dumps(plain))
    print(json.dumps(ghost))
    problems = sanity(plain, ghost)
    for p in problems:
        print(f"FAILED: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    g = ghost["ghost"]
    print(f"ok: {ghost['client']}: identical results ({ghost['checksum']}), "
          f"{g['evictions']} evictions, {g['restores']} restores, live {g['live_bytes']} B in "
          f"{g['allocated_pages']} pages, {g['compressed_bytes']} B compressed in "
          f"{g['store_reserved_bytes']} B of store")


def mib(kib_or_bytes, unit):
    return kib_or_bytes / (1024 if unit == "kib" else 1048576)


def bench(args):
    build = pathlib.Path(args.build)
    if not args.no_build:
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                        "-DCMAKE_INSTALL_LIBDIR=lib"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 1),
                        "--target", "sqlite_client", "lua_client"], check=True,
                       stdout=subprocess.DEVNULL)
    save = open(args.save, "w") if args.save else None
    runs = []
    for client in args.clients.split(","):
        binary = build / "examples" / "clients" / f"{client}_client"
        first = run(binary, "plain", args.scale)
        budget = round(mib(first["vmhwm_kib"], "kib") / 6, 1)
        print(f"{client}: plain VmHWM {mib(first['vmhwm_kib'], 'kib'):.1f} MiB, "
              f"budget {budget:g} MiB", file=sys.stderr, flush=True)
        for rep in range(args.reps):
            pair = (run(binary, "plain", args.scale), run(binary, "ghost", args.scale, budget))
            for r in pair:
                print(json.dumps(r), file=save or sys.stderr, flush=True)
            problems = sanity(*pair)
            if problems:
                sys.exit(f"{client}, rep {rep + 1}: " + "; ".join(problems))
            runs += pair
    render(runs)


def render(runs):
    """The medians of `runs` (JSON objects of both modes, any clients) as a Markdown table."""
    med = statistics.median
    clients = list(dict.fromkeys(r["client"] for r in runs))
    reps = min(sum(1 for r in runs if r["client"] == c and r["mode"] == m)
               for c in clients for m in ("plain", "ghost"))
    scales = sorted({r["scale"] for r in runs})
    for client in clients:
        sums = {r["checksum"] for r in runs if r["client"] == client}
        if len(sums) != 1:
            sys.exit(f"{client}: results differ between runs: {', '.join(sorted(sums))}")
    print(f"\nMedians of {reps} alternating runs of each mode, scale "
          f"{', '.join(f'{s:g}' for s in scales)}; results identical in every run.\n")
    print("| client | mode | budget | time | VmHWM | ghost / plain HWM (target) "
          "| allocated pages | evicted → compressed | store reserved | faults |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for client in clients:
        plains = [r for r in runs if r["client"] == client and r["mode"] == "plain"]
        ghosts = [r for r in runs if r["client"] == client and r["mode"] == "ghost"]
        p_hwm = med(mib(r["vmhwm_kib"], "kib") for r in plains)
        g_hwm = med(mib(r["vmhwm_kib"], "kib") for r in ghosts)
        print(f"| {client} | plain | – | {med(r['seconds'] for r in plains):.1f} s | "
              f"{p_hwm:.1f} MiB | | | | | |")

        def g(key):
            return med(r["ghost"][key] for r in ghosts)

        target = TARGETS.get(client)
        ratio = f"{g_hwm / p_hwm:.2f}" + (f" (≤ {target})" if target else "")
        page = ghosts[0]["ghost"]["page_size"]
        print(f"| {client} | ghost | {med(r['budget_mib'] for r in ghosts):g} MiB | "
              f"{med(r['seconds'] for r in ghosts):.1f} s | {g_hwm:.1f} MiB | {ratio} | "
              f"{mib(g('allocated_pages') * page, 'b'):.1f} MiB | "
              f"{mib(g('original_bytes'), 'b'):.1f} → {mib(g('compressed_bytes'), 'b'):.1f} MiB "
              f"({g('original_bytes') / g('compressed_bytes'):.1f}×) | "
              f"{mib(g('store_reserved_bytes'), 'b'):.1f} MiB | {g('faults') / 1e6:.2f} M |")


def table(args):
    with open(args.runs) as f:
        render([json.loads(line) for line in f if line.startswith("{")])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="small plain and ghost runs: same results, sane statistics")
    c.add_argument("binary")
    c.add_argument("--scale", type=float, default=0.02)
    c.add_argument("--budget-mib", type=float, default=1.0)
    b = sub.add_parser("bench", help="full size, plain and ghost alternating, medians")
    b.add_argument("--build", default=str(ROOT / "target" / "cmake-build"))
    b.add_argument("--no-build", action="store_true", help="use the binaries already in --build")
    b.add_argument("--reps", type=int, default=3)
    b.add_argument("--scale", type=float, default=1.0)
    b.add_argument("--clients", default="sqlite,lua")
    b.add_argument("--save", help="write every run's JSON line to this file (else: stderr)")
    t = sub.add_parser("table", help="the table again, from the lines bench --save wrote")
    t.add_argument("runs")
    args = ap.parse_args()
    {"check": check, "bench": bench, "table": table}[args.command](args)


if __name__ == "__main__":
    main()
