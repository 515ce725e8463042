#!/usr/bin/env python3
"""A node for the `durability` workload in plain Python (stdlib only), from PROTOCOL.md.

Like the bundled `restart-counter`: every incarnation appends one record to
`SQUALL_DATA_DIR/incarnations.log` at start, and answers `read {key: 0}` with how many
records it found there (the incarnations before it) and `read {key: 1}` with how many
lines it found in `scratch.log`, a file it writes (with `--scratch`) and never syncs.

    --fsync    make the record durable: os.fsync the file, and the directory when the
               file was just created (a new name is durable only once its directory is).
               Without it the record is a plain write, which a SIGKILL does not lose on
               an ordinary file system (the page cache keeps it) but `--fs lossy` does.
    --scratch  also append to scratch.log each start, never synced: on `--fs lossy` it
               is gone after a kill (key 1 reads 0); on a native file system it is not.

The durability checker wants key 0 to equal the node's restarts: the node without
--fsync passes on a native file system and fails under `squall run --fs lossy --nemesis
kill`; with --fsync it passes on both.
"""
import json
import os
import socket
import sys

RECORD = "incarnation {}\n"


def count_records(path, prefix):
    """Whole lines starting with `prefix`; a torn last line does not count."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    lines = data.split(b"\n")[:-1]  # the part after the last newline is torn or empty
    return sum(1 for line in lines if line.startswith(prefix))


def append(path, line, sync):
    existed = os.path.exists(path)
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        if sync:
            os.fsync(f.fileno())
    if sync and not existed:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def send(sock, src, dest, body):
    line = json.dumps({"src": src, "dest": dest, "body": body}, separators=(",", ":"))
    sock.sendall(line.encode() + b"\n")


def main(argv):
    sync = "--fsync" in argv
    scratch = "--scratch" in argv
    node_id = os.environ["SQUALL_NODE_ID"]
    data = os.environ["SQUALL_DATA_DIR"]
    incarnation = int(os.environ["SQUALL_INCARNATION"])
    log = os.path.join(data, "incarnations.log")
    scratch_log = os.path.join(data, "scratch.log")

    found = {0: count_records(log, b"incarnation "), 1: count_records(scratch_log, b"scratch ")}
    append(log, RECORD.format(incarnation), sync)
    if scratch:
        append(scratch_log, "scratch {}\n".format(incarnation), False)

    host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    send(sock, node_id, "router", {"type": "hello", "node_id": node_id,
                                   "token": os.environ["SQUALL_TOKEN"],
                                   "incarnation": incarnation})
    # Client requests that arrive before `init` wait for it: the harness counts the node
    # as restarted when its init_ok arrives, so no answer may come before that.
    early = []
    initialised = False
    for raw in sock.makefile("rb"):
        msg = json.loads(raw)
        body = msg["body"]
        kind = body.get("type")
        if kind == "init":
            send(sock, node_id, msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
            initialised = True
            for m in early:
                answer(sock, node_id, m, found)
            early = []
        elif not initialised:
            if len(early) < 1024:
                early.append(msg)
        else:
            answer(sock, node_id, msg, found)
    return 0


def answer(sock, node_id, msg, found):
    body = msg["body"]
    kind = body.get("type")
    if kind == "read" and body.get("key") in found:
        send(sock, node_id, msg["src"], {"type": "read_ok", "in_reply_to": body["msg_id"],
                                         "value": found[body["key"]]})
    elif "msg_id" in body:
        send(sock, node_id, msg["src"], {"type": "error", "in_reply_to": body["msg_id"],
                                         "code": 10, "text": "not supported: %s" % kind})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
