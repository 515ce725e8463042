#!/usr/bin/env python3
"""Maelstrom g-counter and pn-counter: `add {delta}`, `read` -> `{value}`.

A state-based CRDT: per node, the sum of its positive deltas (P) and of its negative ones
(N); the value is sum(P) - sum(N). A node adds only to its own entries, syncs them to
SQUALL_DATA_DIR before `add_ok` (in memory without one), and sends its maps to every peer
every 100 ms; a node merges by taking the larger count per entry. So an acknowledged delta
survives a kill (it was synced) and a partition (gossip resumes after the heal).

--bug lose-on-restart: keeps its own counts in memory only and trusts only itself for
them (ignores its own entries in gossip), so a node restarted after a kill starts its own
counts from zero and the increments it had acknowledged are lost everywhere it reads.
"""
import sys

from maelnode import Node, load_json, store_json

BROKEN = "--bug" in sys.argv and "lose-on-restart" in sys.argv
node = Node()
state = {"p": {}, "n": {}}


def value():
    return sum(state["p"].values()) - sum(state["n"].values())


def start():
    if not BROKEN:
        saved = load_json("counter.json", None)
        if saved is not None:
            state.update(saved)


def add(msg):
    d = msg["body"]["delta"]
    side = "p" if d >= 0 else "n"
    me = node.node_id
    state[side][me] = state[side].get(me, 0) + abs(d)
    if not BROKEN:
        store_json("counter.json", state)
    node.reply(msg, {"type": "add_ok"})


def read(msg):
    node.reply(msg, {"type": "read_ok", "value": value()})


def gossip_in(msg):
    changed = False
    for side in ("p", "n"):
        for who, count in msg["body"][side].items():
            if BROKEN and who == node.node_id:
                continue
            if count > state[side].get(who, 0):
                state[side][who] = count
                changed = True
    if changed and not BROKEN:
        store_json("counter.json", state)


node.on_init = start
node.serve_state({"add": add, "read": read}, lambda: {"type": "gossip", "p": state["p"], "n": state["n"]}, gossip_in)
