#!/usr/bin/env python3
"""Maelstrom echo: answers every `echo` with `echo_ok` carrying the same `echo`."""
from maelnode import Node

node = Node()
node.on("echo", lambda msg: node.reply(msg, {"type": "echo_ok", "echo": msg["body"]["echo"]}))
node.run()
