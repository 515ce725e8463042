#!/usr/bin/env python3
"""A Maelstrom `broadcast` node: gossip along the topology, retried until acknowledged.

Every message a node learns (from a client's `broadcast` or a neighbour's `gossip`) is
kept in `pending` for each neighbour until that neighbour answers `gossip_ok` naming it,
and resent every GOSSIP_S until then, so a partition or a killed neighbour only delays
it. Messages and the topology are appended to the data dir and fsynced before the
node acknowledges them, so a node killed and restarted still has them, and gossips
everything it knows to every neighbour once it is back.

With `--once` it is the classic mistake instead: each message is sent to each neighbour
once, never retried, and nothing is kept on disk. A partition loses messages for good
(caught under `--nemesis partition`).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import maelnode  # noqa: E402

GOSSIP_S = 0.1
BATCH_MAX = 500


class Broadcast:
    def __init__(self, node, once):
        self.node = node
        self.once = once
        self.messages = set()
        self.neighbours = None
        self.pending = {}
        self.journal = None

    def start(self):
        d = maelnode.data_dir()
        if d and not self.once:
            path = os.path.join(d, "broadcast.jsonl")
            if os.path.exists(path):
                with open(path) as f:
                    for line in f:
                        try:
                            rec = json.loads(line)
                        except ValueError:
                            break  # a torn last line
                        if "topology" in rec:
                            self.neighbours = rec["topology"]
                        else:
                            self.messages.update(rec["messages"])
            self.journal = open(path, "a")
        for n in self.peers():
            self.pending[n] = set(self.messages)

    def keep(self, rec):
        if self.journal is None:
            return
        self.journal.write(json.dumps(rec) + "\n")
        self.journal.flush()
        os.fsync(self.journal.fileno())

    def peers(self):
        if self.neighbours is None:
            return self.node.peers()
        return self.neighbours

    def learn(self, msgs, source):
        new = [m for m in msgs if m not in self.messages]
        if not new:
            return
        self.keep({"messages": new})
        self.messages.update(new)
        for n in self.peers():
            if n == source:
                continue
            if self.once:
                self.node.send(n, {"type": "gossip", "messages": new})
            else:
                self.pending.setdefault(n, set()).update(new)

    def on_topology(self, msg):
        mine = msg["body"]["topology"].get(self.node.node_id)
        if mine is not None:
            self.keep({"topology": mine})
            self.neighbours = mine
            for n in mine:
                self.pending.setdefault(n, set()).update(self.messages)
        self.node.reply(msg, {"type": "topology_ok"})

    def on_broadcast(self, msg):
        self.learn([msg["body"]["message"]], None)
        self.node.reply(msg, {"type": "broadcast_ok"})

    def on_read(self, msg):
        self.node.reply(msg, {"type": "read_ok", "messages": sorted(self.messages)})

    def on_gossip(self, msg):
        msgs = msg["body"]["messages"]
        self.learn(msgs, msg["src"])
        if not self.once:
            self.node.send(msg["src"], {"type": "gossip_ok", "messages": msgs})

    def on_gossip_ok(self, msg):
        self.pending.get(msg["src"], set()).difference_update(msg["body"]["messages"])

    def tick(self):
        for n, msgs in self.pending.items():
            if msgs:
                batch = sorted(msgs)[:BATCH_MAX]
                self.node.send(n, {"type": "gossip", "messages": batch})


def main():
    node = maelnode.Node()
    b = Broadcast(node, "--once" in sys.argv[1:])
    node.on_init = b.start
    node.on("topology", b.on_topology)
    node.on("broadcast", b.on_broadcast)
    node.on("read", b.on_read)
    node.on("gossip", b.on_gossip)
    node.on("gossip_ok", b.on_gossip_ok)
    if not b.once:
        node.every(GOSSIP_S, b.tick)
    node.run()


if __name__ == "__main__":
    main()
