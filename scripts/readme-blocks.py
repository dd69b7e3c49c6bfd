#!/usr/bin/env python3
"""The README's C and C++ section, as files and commands the tests run.

Blocks are marked in README.md by a comment on the line before their opening fence:
  <!-- readme-test: file PATH -->   the block is a file (main.cpp, find_package/CMakeLists.txt)
  <!-- readme-test: run -->         the block is a shell script (run with bash -e, GM set)
  <!-- readme-test: output -->      what the run block prints; digits may differ

Usage:
  readme-blocks.py extract DIR        write the files, and the run block as DIR/readme-run.sh
  readme-blocks.py check-output FILE  FILE (what the run block printed) has the README's shape
"""

import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
MARK = re.compile(r"<!-- readme-test: (file (\S+)|run|output) -->")


def blocks():
    lines = README.read_text().splitlines()
    found = []
    i = 0
    while i < len(lines):
        m = MARK.fullmatch(lines[i].strip())
        if not m:
            i += 1
            continue
        j = i + 1
        if j >= len(lines) or not lines[j].startswith("```"):
            raise SystemExit(f"README.md:{i + 1}: a readme-test mark must precede a fenced block")
        end = next((k for k in range(j + 1, len(lines)) if lines[k].startswith("```")), None)
        if end is None:
            raise SystemExit(f"README.md:{j + 1}: unterminated block")
        kind = "file" if m.group(2) else m.group(1)
        found.append((kind, m.group(2), "\n".join(lines[j + 1 : end]) + "\n"))
        i = end + 1
    return found


def extract(out):
    out = pathlib.Path(out)
    runs = 0
    for kind, path, text in blocks():
        if kind == "file":
            target = out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"  {target}")
        elif kind == "run":
            runs += 1
            (out / "readme-run.sh").write_text("set -euxo pipefail\n" + text)
            print(f"  {out / 'readme-run.sh'}")
    if runs != 1:
        raise SystemExit(f"expected one run block in README.md, found {runs}")


def check_output(actual_file):
    outputs = [text for kind, _, text in blocks() if kind == "output"]
    if len(outputs) != 1:
        raise SystemExit(f"expected one output block in README.md, found {len(outputs)}")
    expected = outputs[0].splitlines()
    actual = pathlib.Path(actual_file).read_text().splitlines()
    problems = []
    if len(actual) != len(expected):
        problems.append(f"{len(actual)} lines printed, the README shows {len(expected)}")
    for n, (want, got) in enumerate(zip(expected, actual), 1):
        pattern = "".join(r"\d+" if p.isdigit() else re.escape(p) for p in re.split(r"(\d+)", want))
        if not re.fullmatch(pattern, got):
            problems.append(f"line {n}: printed {got!r}, the README shows {want!r}")
    if problems:
        print("the README's output block does not match what its commands print:", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        return 1
    print(f"ok: the {len(actual)} lines printed have the shape the README shows")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "extract":
        extract(sys.argv[2])
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "check-output":
        return check_output(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
