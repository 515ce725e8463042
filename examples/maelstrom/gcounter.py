#!/usr/bin/env python3
"""A Maelstrom `g-counter` node on the `seq-kv` service, the Gossip Glomers way.

Each node counts its own adds under its own key (a compare-and-set loop, so no add is
lost to a concurrent one and none counts twice); a read sums every node's key. seq-kv
may serve a stale state, but never older than what this client last wrote, so a read
first writes a fresh value to a key of its own: every key it then reads is at least as
new as that write. All state lives in the service, so a killed node loses nothing.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvrpc  # noqa: E402
import maelnode  # noqa: E402

SVC = "seq-kv"
TRIES = 20


def main():
    node = maelnode.Node()
    rpc = kvrpc.Rpc(node)
    stamp = [0]

    def add(msg):
        delta = msg["body"]["delta"]
        for _ in range(TRIES):
            old = rpc.read(SVC, node.node_id, 0)
            if old is None:
                continue
            done = rpc.cas(SVC, node.node_id, old, old + delta)
            if done:
                node.reply(msg, {"type": "add_ok"})
                return
            if done is None:
                return  # may or may not have happened: say nothing (the op is info)
        node.reply(msg, {"type": "error", "code": 11, "text": "contended"})

    def read(msg):
        stamp[0] += 1
        sync = rpc.call(SVC, {"type": "write", "key": "sync-" + node.node_id,
                              "value": stamp[0]})
        if sync is None:
            return
        total = 0
        for n in node.node_ids:
            v = rpc.read(SVC, n, 0)
            if v is None:
                return
            total += v
        node.reply(msg, {"type": "read_ok", "value": total})

    node.on("add", lambda m: kvrpc.spawn(add, m))
    node.on("read", lambda m: kvrpc.spawn(read, m))
    node.run()


if __name__ == "__main__":
    main()
