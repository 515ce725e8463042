#!/usr/bin/env python3
"""lossyfs against the native file system it sits on, side by side.

Starts a squall-lossyfs helper over DIR/backing, mounted at DIR/mnt, and runs the same
workloads in DIR/native and in DIR/mnt, alternating, ROUNDS times; prints medians and the
lossy/native ratios.

  fsync      4 KiB write + fsync, one after another: mean latency per fsync
  durable    a write-heavy durable node: 4 KiB appends, fsync every 8 (MB/s)
  buffered   64 KiB writes, 32 MiB, one fsync at the end (MB/s)
  small      256-byte writes, 4 MiB, no fsync (MB/s): every write is a FUSE round trip

usage: scripts/bench-lossyfs.py [--bin target/release/squall-lossyfs] [--dir DIR] [--rounds N]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time


def fsync_latency(d, n=300):
    p = os.path.join(d, "fsync.dat")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    buf = b"x" * 4096
    t = time.perf_counter()
    for _ in range(n):
        os.write(fd, buf)
        os.fsync(fd)
    dt = time.perf_counter() - t
    os.close(fd)
    os.unlink(p)
    return dt / n * 1e6  # us per write+fsync


def throughput(d, name, chunk, total, fsync_every):
    p = os.path.join(d, name)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    buf = b"y" * chunk
    n = total // chunk
    t = time.perf_counter()
    for i in range(n):
        os.write(fd, buf)
        if fsync_every and (i + 1) % fsync_every == 0:
            os.fsync(fd)
    os.fsync(fd)
    dt = time.perf_counter() - t
    os.close(fd)
    os.unlink(p)
    return total / dt / 1e6  # MB/s


BENCHES = [
    ("fsync", "us/fsync", lambda d: fsync_latency(d)),
    ("durable", "MB/s", lambda d: throughput(d, "durable.dat", 4096, 8 << 20, 8)),
    ("buffered", "MB/s", lambda d: throughput(d, "buffered.dat", 65536, 32 << 20, 0)),
    ("small", "MB/s", lambda d: throughput(d, "small.dat", 256, 4 << 20, 0)),
]


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--bin", default=os.path.join(root, "target/release/squall-lossyfs"))
    ap.add_argument("--dir", default=os.path.join(root, "results/bench-lossyfs"))
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    native, mnt, backing = (os.path.join(a.dir, x) for x in ("native", "mnt", "backing"))
    for d in (native, mnt, backing):
        os.makedirs(d)
    helper = subprocess.Popen([a.bin, "--backing", backing, "--mount", mnt],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(helper.stdout.readline())
    if not ready.get("ready"):
        sys.exit("lossyfs did not mount: %s" % ready)
    results = {name: {"native": [], "lossy": []} for name, _, _ in BENCHES}
    try:
        for _ in range(a.rounds):
            for name, _, f in BENCHES:
                results[name]["native"].append(f(native))
                results[name]["lossy"].append(f(mnt))
    finally:
        helper.stdin.close()
        helper.wait(timeout=30)
    print("%-9s %-9s %12s %12s %8s" % ("bench", "unit", "native", "lossy", "ratio"))
    for name, unit, _ in BENCHES:
        n = statistics.median(results[name]["native"])
        l = statistics.median(results[name]["lossy"])
        print("%-9s %-9s %12.1f %12.1f %8.2f" % (name, unit, n, l, l / n))
    shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
