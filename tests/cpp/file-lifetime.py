#!/usr/bin/env python3
"""Run a program and check, with inotify, that it created FILE and that FILE is gone when the
program has exited: evidence that the file existed while the program ran and was removed, not
merely that it does not exist afterwards.

Usage: file-lifetime.py FILE -- program [args...]
Its directory is watched; a FILE left by an earlier run is removed first.
"""

import ctypes
import os
import struct
import subprocess
import sys

IN_CREATE = 0x100
IN_DELETE = 0x200
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_NONBLOCK = 0o4000
NAMES = {IN_CREATE: "created", IN_DELETE: "removed", IN_MOVED_FROM: "moved away", IN_MOVED_TO: "moved in"}


def events(fd):
    """(mask, name) of every queued event."""
    out = []
    while True:
        try:
            buf = os.read(fd, 65536)
        except BlockingIOError:
            return out
        at = 0
        while at < len(buf):
            _wd, mask, _cookie, size = struct.unpack_from("iIII", buf, at)
            name = buf[at + 16 : at + 16 + size].rstrip(b"\0").decode()
            out.append((mask, name))
            at += 16 + size


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    path, program = os.path.abspath(sys.argv[1]), sys.argv[3:]
    directory, name = os.path.split(path)
    if os.path.lexists(path):
        print(f"file-lifetime.py: removing {path}, left by an earlier run")
        os.unlink(path)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
    if fd < 0 or libc.inotify_add_watch(fd, directory.encode(), mask) < 0:
        sys.exit(f"file-lifetime.py: inotify: {os.strerror(ctypes.get_errno())}")
    rc = subprocess.run(program).returncode
    seen = [NAMES.get(m & mask, hex(m)) for m, n in events(fd) if n == name]
    print(f"file-lifetime.py: {name}: {', '.join(seen) or 'no events'}; program exit status {rc}")
    if rc != 0:
        sys.exit(1)
    if "created" not in seen:
        sys.exit(f"file-lifetime.py: {path} was never created")
    if os.path.lexists(path) or seen[-1] != "removed":
        sys.exit(f"file-lifetime.py: {path} was not removed")


if __name__ == "__main__":
    main()
