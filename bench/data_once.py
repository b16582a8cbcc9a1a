"""What the data work costs per run and per experiment: the real-size store, and its reads.

Two tools for the figures of the data layer (issue 13), run from the repository root:

* ``build-store DIR``: the scale bench's store of the real AVE size in DIR
  (:func:`bench.scale.build_store`: the synthetic generator at the real split sizes,
  3339/402/402 videos + 178 background-only videos, every feature file rewritten as
  contiguous **float64** like the official release; built once, reused while complete).
  Use it as ``data.source: local`` with ``data.local_dir: DIR``.
* ``visual-reads -- COMMAND...``: runs COMMAND (e.g. ``dvc repro``) under ``strace`` and
  prints, per process (DVC itself, then each ``python -m stages.<name>`` of a stage), the
  bytes it read from the visual files (``visual_feature*.h5``), with the command's wall
  time. Every ``read``/``pread64`` is counted, page-cache hits included, so a file read
  twice counts twice.

Usage::

    python -m bench.data_once build-store /path/to/realstore
    python -m bench.data_once visual-reads [--log FILE] -- dvc repro
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench import scale

GB = 1e9
_LINE = re.compile(r"^(\d+) +(\w+)\((.*)\) += (-?\d+)")
_UNFINISHED = re.compile(r"^(\d+) +(\w+)\((.*) <unfinished \.\.\.>$")
_RESUMED = re.compile(r"^(\d+) +<\.\.\. (\w+) resumed>.*\) += (-?\d+)")
_FD_PATH = re.compile(r"^\d+<([^>]*)>")
_VISUAL = re.compile(r"^visual_feature.*\.h5$")


def _who(argv: str) -> str:
    """A short name for a process from its ``execve`` argument list."""
    match = re.search(r'"-m", "stages\.(\w+)"(?:, "(\w+)")?', argv)
    if match:
        return match.group(1) + (f"@{match.group(2)}" if match.group(2) else "")
    return "dvc" if "dvc" in argv else "other"


def _calls(log: Path):
    """``(tid, call, arguments, result)`` of each finished call of an ``strace -f`` log."""
    pending: dict[str, str] = {}
    for line in log.read_text(errors="replace").splitlines():
        if match := _LINE.match(line):
            tid, call, args, result = match.groups()
            yield tid, call, args, int(result)
        elif match := _UNFINISHED.match(line):
            pending[match.group(1)] = match.group(3)
        elif match := _RESUMED.match(line):
            tid, call, result = match.groups()
            yield tid, call, pending.pop(tid, ""), int(result)


def visual_reads(log: Path) -> dict[str, int]:
    """Bytes read from ``visual_feature*.h5`` per process name, from an ``strace -f`` log."""
    parent: dict[str, str] = {}
    name: dict[str, str] = {}
    total: dict[str, int] = defaultdict(int)

    def owner(tid: str) -> str:
        while tid not in name and tid in parent:
            tid = parent[tid]
        return name.get(tid, "other")

    for tid, call, args, result in _calls(log):
        if call == "execve" and result == 0:
            name[tid] = _who(args)
        elif call in {"clone", "clone3", "fork", "vfork"} and result > 0:
            parent[str(result)] = tid
        elif call in {"read", "pread64"} and result > 0:
            fd = _FD_PATH.match(args)
            if fd and _VISUAL.match(Path(fd.group(1)).name):
                total[owner(tid)] += result
    return dict(total)


def run_traced(command: list[str], log: Path) -> float:
    """Run ``command`` under ``strace -f``; return its wall seconds."""
    if shutil.which("strace") is None:
        sys.exit("strace not found")
    trace = ["strace", "-f", "-qq", "-y", "-v", "-s", "64", "-o", str(log)]  # -v: whole argv
    calls = "trace=read,pread64,execve,clone,clone3,fork,vfork"
    start = time.perf_counter()
    result = subprocess.run([*trace, "-e", calls, "-e", "signal=none", *command])
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{command} failed with exit status {result.returncode}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    tools = parser.add_subparsers(dest="tool", required=True)
    build = tools.add_parser("build-store", help="write the real-size float64 store")
    build.add_argument("dir", type=Path)
    reads = tools.add_parser("visual-reads", help="bytes read from the visual files")
    reads.add_argument("--log", type=Path, help="keep the strace log here")
    reads.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.tool == "build-store":
        seconds = scale.build_store(args.dir)
        done = "complete already" if seconds is None else f"built in {seconds:.0f} s"
        print(f"{args.dir}: {done}")
        return
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with tempfile.TemporaryDirectory() as scratch:
        log = args.log or Path(scratch) / "strace.log"
        seconds = run_traced(command, log)
        totals = visual_reads(log)
    print(f"{' '.join(command)}: {seconds:.1f} s wall (under strace)")
    print(f"{'process':<28}{'visual GB read':>15}")
    for who, count in sorted(totals.items(), key=lambda item: (item[0] != "dvc", item[0])):
        print(f"{who:<28}{count / GB:>15.2f}")
    print(f"{'total':<28}{sum(totals.values()) / GB:>15.2f}")


if __name__ == "__main__":
    main()
