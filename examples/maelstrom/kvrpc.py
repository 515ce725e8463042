"""Calls to Maelstrom's services (seq-kv, lin-kv, lww-kv, lin-tso) from a maelnode.Node.

A handler that needs a service runs its work in a thread (`spawn`), since replies come
in on the same stdin the handler was called from. `call` sends a body with a fresh
`msg_id` and waits for the body that names it in `in_reply_to`, or None after the
timeout.
"""
import threading

REPLY_TYPES = ("read_ok", "write_ok", "cas_ok", "ts_ok", "error")


class Rpc:
    def __init__(self, node):
        self.node = node
        self.cv = threading.Condition()
        self.next_id = 0
        self.replies = {}
        for t in REPLY_TYPES:
            node.on(t, self.on_reply)

    def on_reply(self, msg):
        with self.cv:
            irt = msg["body"].get("in_reply_to")
            if irt in self.replies:
                self.replies[irt] = msg["body"]
                self.cv.notify_all()

    def call(self, dest, body, timeout=1.0):
        with self.cv:
            self.next_id += 1
            mid = self.next_id
            self.replies[mid] = None
        self.node.send(dest, dict(body, msg_id=mid))
        with self.cv:
            self.cv.wait_for(lambda: self.replies[mid] is not None, timeout)
            return self.replies.pop(mid)

    def read(self, svc, key, default):
        """The value at key, `default` if the key does not exist; None on a timeout."""
        r = self.call(svc, {"type": "read", "key": key})
        if r is None:
            return None
        if r["type"] == "error":
            return default if r.get("code") == 20 else None
        return r["value"]

    def cas(self, svc, key, old, new):
        """True if key went from old to new (created if missing), False if it held
        something else, None on a timeout or another error."""
        r = self.call(svc, {"type": "cas", "key": key, "from": old, "to": new,
                            "create_if_not_exists": True})
        if r is None:
            return None
        if r["type"] == "cas_ok":
            return True
        return False if r.get("code") == 22 else None


def spawn(fn, *args):
    threading.Thread(target=fn, args=args, daemon=True).start()
