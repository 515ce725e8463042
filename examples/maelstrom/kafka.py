#!/usr/bin/env python3
"""A Maelstrom `kafka` node: one owner keeps every log, the others forward to it.

The first node of `node_ids` owns every key. Another node forwards a client's request
to the owner (`forward`, carrying the client's address and body), and the owner replies
to the client directly, as Maelstrom allows. The owner appends each send and each
commit to a journal in the data dir and fsyncs it before replying, and reads the
journal back after a restart, so an acknowledged offset is never given out again. A
partition or a killed owner makes requests time out; it never loses or reuses one.

With `--forget-offsets` it is broken the way a node that keeps its logs in memory is:
after a restart the owner starts every log afresh at offset 0, giving out offsets it
already acknowledged (caught under `--nemesis kill`).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import maelnode  # noqa: E402

POLL_MAX = 1000


class Kafka:
    def __init__(self, node, forget):
        self.node = node
        self.forget = forget
        self.logs = {}
        self.committed = {}
        self.journal = None

    def owner(self):
        return self.node.node_ids[0]

    def start(self):
        d = maelnode.data_dir()
        if d is None:
            return
        path = os.path.join(d, "kafka.jsonl")
        if os.path.exists(path) and not self.forget:
            with open(path) as f:
                for line in f:
                    try:
                        self.apply(json.loads(line))
                    except ValueError:
                        break  # a torn last line
        self.journal = open(path, "a")

    def apply(self, rec):
        if rec[0] == "send":
            self.logs.setdefault(rec[1], []).append(rec[2])
        else:
            self.committed[rec[1]] = max(self.committed.get(rec[1], 0), rec[2])

    def keep(self, rec):
        if self.journal is not None:
            self.journal.write(json.dumps(rec) + "\n")
            self.journal.flush()
            os.fsync(self.journal.fileno())
        self.apply(rec)

    def handle(self, client, body):
        kind = body["type"]
        if kind == "send":
            self.keep(["send", body["key"], body["msg"]])
            reply = {"type": "send_ok", "offset": len(self.logs[body["key"]]) - 1}
        elif kind == "poll":
            msgs = {}
            for key, start in body["offsets"].items():
                log = self.logs.get(key, [])
                msgs[key] = [[o, log[o]] for o in range(start, min(len(log), start + POLL_MAX))]
            reply = {"type": "poll_ok", "msgs": msgs}
        elif kind == "commit_offsets":
            for key, offset in body["offsets"].items():
                self.keep(["commit", key, offset])
            reply = {"type": "commit_offsets_ok"}
        else:
            offsets = {k: self.committed[k] for k in body["keys"] if k in self.committed}
            reply = {"type": "list_committed_offsets_ok", "offsets": offsets}
        reply["in_reply_to"] = body["msg_id"]
        self.node.send(client, reply)

    def on_request(self, msg):
        if self.node.node_id == self.owner():
            self.handle(msg["src"], msg["body"])
        else:
            self.node.send(self.owner(), {"type": "forward", "client": msg["src"],
                                          "request": msg["body"]})

    def on_forward(self, msg):
        if self.node.node_id == self.owner():
            self.handle(msg["body"]["client"], msg["body"]["request"])


def main():
    node = maelnode.Node()
    k = Kafka(node, "--forget-offsets" in sys.argv[1:])
    node.on_init = k.start
    for kind in ("send", "poll", "commit_offsets", "list_committed_offsets"):
        node.on(kind, k.on_request)
    node.on("forward", k.on_forward)
    node.run()


if __name__ == "__main__":
    main()
