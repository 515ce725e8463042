#!/usr/bin/env python3
"""Maelstrom echo: answers every `echo` with `echo_ok` carrying the same `echo`.

--forward: every node but the last passes a client's request on to the last node with
`src` still the client's id, and the last node answers the client directly (Maelstrom
allows this, and some nodes rely on it).
"""
import sys

from maelnode import Node

FORWARD = "--forward" in sys.argv
node = Node()


def echo(msg):
    server = node.node_ids[-1]
    if FORWARD and node.node_id != server:
        node.forward(msg, server)
        return
    node.reply(msg, {"type": "echo_ok", "echo": msg["body"]["echo"]})


node.on("echo", echo)
node.run()
