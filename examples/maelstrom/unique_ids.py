#!/usr/bin/env python3
"""Maelstrom unique-ids: `generate` answers an id no other call ever gets.

An id is [node id, epoch, counter]. The epoch is one higher at every start: kept in
SQUALL_DATA_DIR (synced before the first id is handed out) when squall gives one, else a
random 64-bit number, so a restarted node never repeats an id it gave before.

--bug per-process-counter: the id is "<node>-<counter>" with a counter that starts at 0 in
every process, so a node restarted after a kill hands out its first ids again.
--bug no-id: answers `generate_ok` without an id (a malformed reply).
"""
import random
import sys

from maelnode import Node, data_dir, load_json, store_json

BROKEN = "--bug" in sys.argv and "per-process-counter" in sys.argv
NO_ID = "--bug" in sys.argv and "no-id" in sys.argv
node = Node()
state = {"epoch": None, "next": 0}


def start():
    if data_dir() is not None:
        state["epoch"] = load_json("epoch.json", 0) + 1
        store_json("epoch.json", state["epoch"])
    else:
        state["epoch"] = random.getrandbits(64)


def generate(msg):
    state["next"] += 1
    if BROKEN:
        ident = "%s-%d" % (node.node_id, state["next"])
    else:
        ident = [node.node_id, state["epoch"], state["next"]]
    node.reply(msg, {"type": "generate_ok"} if NO_ID else {"type": "generate_ok", "id": ident})


node.on_init = start
node.on("generate", generate)
node.run()
