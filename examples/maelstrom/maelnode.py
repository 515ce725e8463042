"""A tiny Maelstrom node library in stdlib Python: stdin/stdout, one JSON message per line.

These nodes are written for Maelstrom's protocol only (they know nothing of squall):
`init` first, then requests from clients and messages from peers; replies carry
`in_reply_to`. squall runs them with `--stdio` (or `squall test`), Maelstrom with
`maelstrom test`. Durable state goes to SQUALL_DATA_DIR when it is set (squall keeps it
across a kill and restart), else it lives in memory only (Maelstrom wipes state anyway).
"""
import json
import os
import sys
import threading
import time


class Node:
    def __init__(self):
        self.node_id = None
        self.node_ids = []
        self.handlers = {}
        self.out_lock = threading.Lock()
        self.lock = threading.RLock()
        self.next_msg_id = 0
        self.periodic = []
        self.on_init = None

    def on(self, msg_type, fn):
        """Calls fn(msg) for every message whose body has this type."""
        self.handlers[msg_type] = fn

    def every(self, seconds, fn):
        """Calls fn() every `seconds` once the node is initialised."""
        self.periodic.append((seconds, fn))

    def serve_state(self, handlers, gossip, merge, every=0.1):
        """Answers the request types of `handlers` (type -> fn(msg)); every `every` seconds
        sends `gossip()` (a body) to every peer, and merges a peer's with `merge(msg)`."""
        for kind, fn in handlers.items():
            self.on(kind, fn)
        self.on(gossip()["type"], merge)

        def push():
            for peer in self.peers():
                self.send(peer, gossip())

        self.every(every, push)
        self.run()

    def peers(self):
        return [n for n in self.node_ids if n != self.node_id]

    def send(self, dest, body):
        line = json.dumps({"src": self.node_id, "dest": dest, "body": body},
                          separators=(",", ":"))
        with self.out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def forward(self, msg, dest):
        """Passes `msg` on to node `dest` unchanged, `src` still its sender's."""
        line = json.dumps({"src": msg["src"], "dest": dest, "body": msg["body"]},
                          separators=(",", ":"))
        with self.out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def reply(self, msg, body):
        body = dict(body)
        body["in_reply_to"] = msg["body"]["msg_id"]
        self.send(msg["src"], body)

    def log(self, text):
        sys.stderr.write("%s: %s\n" % (self.node_id, text))
        sys.stderr.flush()

    def _tick(self, seconds, fn):
        while True:
            time.sleep(seconds)
            try:
                with self.lock:
                    fn()
            except BrokenPipeError:
                os._exit(0)

    def run(self):
        for raw in sys.stdin:
            raw = raw.strip()
            if not raw:
                continue
            msg = json.loads(raw)
            body = msg["body"]
            kind = body.get("type")
            if kind == "init":
                self.node_id = body["node_id"]
                self.node_ids = body["node_ids"]
                if self.on_init:
                    with self.lock:
                        self.on_init()
                self.reply(msg, {"type": "init_ok"})
                for seconds, fn in self.periodic:
                    threading.Thread(target=self._tick, args=(seconds, fn), daemon=True).start()
                continue
            fn = self.handlers.get(kind)
            if fn is not None:
                with self.lock:
                    fn(msg)
            elif "msg_id" in body:
                self.reply(msg, {"type": "error", "code": 10, "text": "not supported: %s" % kind})


def data_dir():
    """SQUALL_DATA_DIR, or None when state is to live in memory only."""
    return os.environ.get("SQUALL_DATA_DIR")


def load_json(name, default):
    """The JSON kept in file `name` of the data dir, or `default`."""
    d = data_dir()
    if d is None:
        return default
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return default


def store_json(name, value):
    """Keeps `value` durably in file `name` of the data dir (write, fsync, rename, fsync the
    directory); nothing without a data dir."""
    d = data_dir()
    if d is None:
        return
    tmp = os.path.join(d, name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(d, name))
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
