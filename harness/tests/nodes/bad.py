#!/usr/bin/env python3
"""A node that abuses the harness in one way, to show every bound holds. Stdlib only.

usage: bad.py MODE [CMD...]

Node n1 misbehaves as MODE says. Every other node becomes CMD when one is given (a real
node, e.g. `squall-node --algorithm paxos`), else it is a plain echo node. n1 also answers
`init` and `echo` like an echo node, unless MODE says otherwise.

MODE:
  unknown-dest     floods messages to an address that does not exist
  harness-reports  floods reports of unknown types to `harness`
  many-types       floods n2 with messages of ever new `type` names
  long-types       floods n2 with messages whose `type` is 100 KB long
  flood-peer       floods n2 with 512 KB messages
  pre-hello        opens 500 more connections that never say hello, each sending 1 MB
                   with no newline
  never-answers    answers init, then never answers anything
  forks            forks children and an orphaned grandchild that sleep for an hour, then
                   becomes CMD if one is given
  exits            forks a child that sleeps for an hour (and starts CMD, if given, as
                   another child), then exits after one second
  fuzz             sends mutated frames on its own connection (and mutated hellos on
                   fresh ones) until the run ends; seeded by SQUALL_SEED; counts them
                   in $SQUALL_DATA_DIR/fuzz.count

Processes n1 forks write their pids, one a line, to $SQUALL_DATA_DIR/forked.pids.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

FLOODS = {"unknown-dest", "harness-reports", "many-types", "long-types", "flood-peer"}


class Conn:
    def __init__(self, me):
        host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
        self.me = me
        self.sock = socket.create_connection((host, int(port)))
        self.lock = threading.Lock()
        self.send("router", {"type": "hello", "node_id": me,
                             "token": os.environ["SQUALL_TOKEN"],
                             "incarnation": int(os.environ.get("SQUALL_INCARNATION", "0"))})

    def send(self, dest, body):
        line = json.dumps({"src": self.me, "dest": dest, "body": body}, separators=(",", ":"))
        with self.lock:
            self.sock.sendall(line.encode() + b"\n")


def note_pid(pid):
    with open(os.path.join(os.environ["SQUALL_DATA_DIR"], "forked.pids"), "a") as f:
        f.write("%d\n" % pid)


def sleeper():
    return subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL)


def orphan():
    """A grandchild whose parent exits at once: it is reparented away from the node."""
    pid = os.fork()
    if pid == 0:
        child = sleeper()
        note_pid(child.pid)
        os._exit(0)
    os.waitpid(pid, 0)


def flood(conn, mode):
    pad = "p" * (512 * 1024)
    long_type = "x" * (100 * 1024)
    i = 0
    while True:
        i += 1
        if mode == "unknown-dest":
            conn.send("zz9", {"type": "gossip", "n": i})
        elif mode == "harness-reports":
            conn.send("harness", {"type": "bogus_report", "n": i})
        elif mode == "many-types":
            conn.send("n2", {"type": "t%d" % i})
        elif mode == "long-types":
            conn.send("n2", {"type": long_type + str(i)})
        elif mode == "flood-peer":
            conn.send("n2", {"type": "gossip", "pad": pad})


SEEDS = [
    b'{"src":"n1","dest":"n2","body":{"type":"echo","msg_id":1,"echo":"x"}}',
    b'{"src":"n1","dest":"harness","body":{"type":"decided","key":3,"value":17}}',
    b'{"src":"n1","dest":"c1","body":{"type":"echo_ok","in_reply_to":1,"echo":"x"}}',
    b'{"src":"n1","dest":"n3","body":{"type":"accept","key":1,"ballot":{"round":2,"node":"n1"},"value":[1,2]}}',
    b'{"src":"n1","dest":"router","body":{"type":"hello","node_id":"n1","token":"t"}}',
    b'{"src":"n1","dest":"harness","body":{"type":"init_ok","in_reply_to":1}}',
]
TOKENS = [b'"', b'{', b'}', b'[', b']', b':', b',', b'\\', b'\\u0000', b'\\ud800', b'null',
          b'1e999', b'-0', b'18446744073709551616', b'\xff\xfe', b'\xc3', b'"type"', b'"src"',
          b'"dest"', b'"body"', b'"n1"', b'"harness"', b'"\xe2\x82\xac"', b' ', b'\t', b'\r']


def mutate(rng):
    frame = bytearray(rng.choice(SEEDS))
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(8)
        at = rng.randrange(len(frame) + 1)
        if op == 0 and frame:
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
        elif op == 1:
            del frame[at:at + rng.randint(1, 16)]
        elif op == 2:
            frame[at:at] = rng.choice(TOKENS)
        elif op == 3:
            frame[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 4:
            frame[at:at] = frame[rng.randrange(len(frame) + 1):][:rng.randint(1, 64)]
        elif op == 5:
            frame[at:at] = b'[' * rng.randint(1, 300)
        elif op == 6:
            frame[at:at] = b'"' + b'y' * rng.randint(1, 20000) + b'"'
        else:
            frame = bytearray(rng.choice(SEEDS)) + bytes(frame)
    return bytes(frame).replace(b"\n", b" ")


def fuzz(conn):
    import random
    rng = random.Random(int(os.environ.get("SQUALL_SEED", "1")))
    host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
    count_path = os.path.join(os.environ["SQUALL_DATA_DIR"], "fuzz.count")
    sent = 0
    batches = 0
    while True:
        try:
            with conn.lock:
                conn.sock.sendall(b"".join(mutate(rng) + b"\n" for _ in range(64)))
            sent += 64
        except OSError:
            pass
        batches += 1
        if batches % 64 == 0:
            try:
                s = socket.create_connection((host, int(port)), timeout=1)
                s.sendall(mutate(rng) + b"\n" + mutate(rng))
                s.close()
                sent += 2
            except OSError:
                pass
            with open(count_path + ".tmp", "w") as f:
                f.write("%d\n" % sent)
            os.replace(count_path + ".tmp", count_path)


def pre_hello(conn):
    host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
    held = []
    chunk = b"{" + b"x" * (64 * 1024)
    for _ in range(500):
        try:
            s = socket.create_connection((host, int(port)), timeout=2)
            s.setblocking(False)
            held.append(s)
        except OSError:
            continue
    for _ in range(16):
        for s in held:
            try:
                s.send(chunk)
            except OSError:
                pass
    time.sleep(3600)


def main():
    mode, cmd = sys.argv[1], sys.argv[2:]
    me = os.environ["SQUALL_NODE_ID"]
    bad = me == "n1"
    if not bad and cmd:
        os.execvp(cmd[0], cmd)
    if bad and mode == "forks":
        for _ in range(2):
            note_pid(sleeper().pid)
        orphan()
        if cmd:
            os.execvp(cmd[0], cmd)
    if bad and mode == "exits":
        note_pid(sleeper().pid)
        orphan()
        if cmd:
            # The real node runs on as an orphan in n1's group after n1 itself exits.
            note_pid(subprocess.Popen(cmd, stdin=subprocess.DEVNULL).pid)
            time.sleep(1.0)
            os._exit(0)
        threading.Timer(1.0, lambda: os._exit(0)).start()
    conn = Conn(me)
    reader = conn.sock.makefile("rb")
    for raw in reader:
        # Peers of a fuzzing n1 get odd bodies: a good node ignores what it cannot read.
        try:
            msg = json.loads(raw)
            body = msg["body"]
            kind = body.get("type")
            if kind == "echo":
                body["msg_id"], body["echo"]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if kind == "init":
            conn.send(msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
            if bad and mode in FLOODS:
                threading.Thread(target=flood, args=(conn, mode), daemon=True).start()
            if bad and mode == "fuzz":
                threading.Thread(target=fuzz, args=(conn,), daemon=True).start()
            if bad and mode == "pre-hello":
                threading.Thread(target=pre_hello, args=(conn,), daemon=True).start()
        elif bad and mode == "never-answers":
            continue
        elif kind == "echo":
            conn.send(msg["src"], {"type": "echo_ok", "in_reply_to": body["msg_id"],
                                   "echo": body["echo"]})
        elif "msg_id" in body and msg["src"] not in ("n1", "n2", "n3", "n4", "n5"):
            conn.send(msg["src"], {"type": "error", "in_reply_to": body["msg_id"], "code": 10,
                                   "text": "not supported: %s" % kind})
    return 0


if __name__ == "__main__":
    sys.exit(main())
