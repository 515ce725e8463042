#!/usr/bin/env python3
"""Maelstrom g-set: `add {element}`, `read` -> `{value: [...]}`.

Every node keeps the set, synced to SQUALL_DATA_DIR before `add_ok` (in memory without
one), and sends its whole set to every peer every 100 ms; a node merges what it gets
(union). After a partition heals, gossip brings every node every element.
"""
from maelnode import Node, load_json, store_json

node = Node()
elements = {}


def key(e):
    import json
    return json.dumps(e, sort_keys=True)


def start():
    for e in load_json("set.json", []):
        elements[key(e)] = e


def add(msg):
    e = msg["body"]["element"]
    if key(e) not in elements:
        elements[key(e)] = e
        store_json("set.json", list(elements.values()))
    node.reply(msg, {"type": "add_ok"})


def read(msg):
    node.reply(msg, {"type": "read_ok", "value": list(elements.values())})


def gossip_in(msg):
    fresh = [e for e in msg["body"]["elements"] if key(e) not in elements]
    for e in fresh:
        elements[key(e)] = e
    if fresh:
        store_json("set.json", list(elements.values()))


node.on_init = start
node.serve_state({"add": add, "read": read}, lambda: {"type": "gossip", "elements": list(elements.values())}, gossip_in)
