#!/usr/bin/env python3
"""A Maelstrom `lin-kv` node that keeps nothing itself: every read, write and cas goes to
one of squall's kv services (`--service lin-kv` by default) and its answer goes back to
the client. On `lin-kv` the history is linearizable; on `seq-kv` (stale reads) or
`lww-kv` (replicas that merge later) it is not, which is how the services are tested.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvrpc  # noqa: E402
import maelnode  # noqa: E402


def main():
    args = sys.argv[1:]
    svc = args[args.index("--service") + 1] if "--service" in args else "lin-kv"
    node = maelnode.Node()
    rpc = kvrpc.Rpc(node)

    def proxy(msg):
        body = {k: v for k, v in msg["body"].items() if k != "msg_id"}
        r = rpc.call(svc, body)
        if r is None:
            return  # the service did not answer in time: the op may have happened
        node.reply(msg, {k: v for k, v in r.items() if k not in ("in_reply_to", "msg_id")})

    for kind in ("read", "write", "cas"):
        node.on(kind, lambda m: kvrpc.spawn(proxy, m))
    node.run()


if __name__ == "__main__":
    main()
