#!/usr/bin/env python3
"""Runs a node command; as one node it exits on its own after a while, for squall's tests.

usage: exit_after.py NODE SECONDS CMD...

As NODE (first incarnation only) it runs CMD, ends it after SECONDS and exits with
status 0, as a node with a bug might: squall neither killed it nor asked it to stop.
Any other node simply becomes CMD.
"""
import os
import subprocess
import sys


def main():
    node, seconds, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    if os.environ.get("SQUALL_NODE_ID") != node or os.environ.get("SQUALL_INCARNATION", "0") != "0":
        os.execvp(cmd[0], cmd)
    child = subprocess.Popen(cmd)
    try:
        child.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
