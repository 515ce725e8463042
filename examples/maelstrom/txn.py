#!/usr/bin/env python3
"""A Maelstrom `txn-rw-register` node: totally-available, read-committed transactions.

Every node answers every `txn` itself, at once, whatever the network does. It runs the
micro-ops in order against its own store, reads seeing the txn's own earlier writes
first, and installs only the txn's last write of each key, all at once when the txn
ends: no other txn can see an intermediate value (G1b) and none is ever aborted (G1a).
Each stored value carries a Lamport timestamp and the writing node; nodes gossip their
whole store to every peer every 100 ms and keep, per key, the entry with the larger
(timestamp, node), so they converge after a partition heals. Every txn that writes
syncs the store to SQUALL_DATA_DIR before `txn_ok` (in memory without one). With
`--node-count 1` it is the single-node store of the first transactions challenge.

Broken on purpose (`--bug NAME`):
- `aborted-writes`: answers one writing txn in five with error 30 (txn-conflict, a
  definite failure) after installing its writes, so other txns read writes of aborted
  txns (G1a).
- `intermediate-writes`: installs each write as soon as it runs and lets other txns run
  between micro-ops (a thread per txn, 10 ms between micro-ops), so a txn that writes a
  key twice exposes the first value (G1b).
"""
import json
import random
import sys
import threading
import time

from maelnode import Node, load_json, store_json

BUG = sys.argv[sys.argv.index("--bug") + 1] if "--bug" in sys.argv else None
STEP_S = 0.01

node = Node()
# JSON-encoded key -> [lamport timestamp, node id, value]
store = {}
clock = [0]


def start():
    saved = load_json("txn.json", None)
    if saved is not None:
        store.update(saved["store"])
        clock[0] = saved["clock"]


def install(key, value):
    clock[0] += 1
    store[key] = [clock[0], node.node_id, value]


def step(own, f, key, v):
    """One micro-op: a read sees the txn's own last write of the key first, then the
    store; a write is kept in `own`. The value the micro-op answers with."""
    if f == "w":
        own[key] = v
        return v
    if key in own:
        return own[key]
    return store[key][2] if key in store else None


def run(msg):
    """Runs one txn against the store; answers it."""
    own = {}
    out = []
    for f, k, v in msg["body"]["txn"]:
        v = step(own, f, json.dumps(k), v)
        out.append([f, k, v])
    for key, value in own.items():
        install(key, value)
    if own:
        store_json("txn.json", {"store": store, "clock": clock[0]})
    if BUG == "aborted-writes" and own and random.random() < 0.2:
        node.reply(msg, {"type": "error", "code": 30, "text": "txn conflict"})
        return
    node.reply(msg, {"type": "txn_ok", "txn": out})


def run_unsafely(msg):
    """The `intermediate-writes` bug: each micro-op on its own, writes installed at once."""
    own = {}
    out = []
    for f, k, v in msg["body"]["txn"]:
        key = json.dumps(k)
        with node.lock:
            v = step(own, f, key, v)
            if f == "w":
                install(key, v)
        out.append([f, k, v])
        time.sleep(STEP_S)
    with node.lock:
        node.reply(msg, {"type": "txn_ok", "txn": out})


def txn(msg):
    if BUG == "intermediate-writes":
        threading.Thread(target=run_unsafely, args=(msg,), daemon=True).start()
    else:
        run(msg)


def merge(msg):
    for key, entry in msg["body"]["store"].items():
        clock[0] = max(clock[0], entry[0])
        mine = store.get(key)
        if mine is None or (entry[0], entry[1]) > (mine[0], mine[1]):
            store[key] = entry


node.on_init = start
node.serve_state({"txn": txn}, lambda: {"type": "replicate", "store": store}, merge)
