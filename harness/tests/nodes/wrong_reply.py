#!/usr/bin/env python3
"""A write-once node that answers every request with a reply of the wrong type.

`propose` gets `echo_ok` and `read` gets `write_ok`: a harness that took any non-error
reply as success would record each proposer's own value as decided, and see agreement
broken by a node that decided nothing. squall must record the node as faulty instead.
"""
import json
import os
import socket
import sys


def send(sock, src, dest, body):
    sock.sendall(json.dumps({"src": src, "dest": dest, "body": body}).encode() + b"\n")


# The reply to each request type: `init_ok` is right, the others are of the wrong type.
REPLIES = {
    "init": {"type": "init_ok"},
    "propose": {"type": "echo_ok", "echo": "x"},
    "read": {"type": "write_ok"},
}


def main():
    me = os.environ["SQUALL_NODE_ID"]
    host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    hello = {"type": "hello", "node_id": me}
    if "SQUALL_TOKEN" in os.environ:
        hello["token"] = os.environ["SQUALL_TOKEN"]
    send(sock, me, "router", hello)
    for raw in sock.makefile("rb"):
        msg = json.loads(raw)
        body = msg["body"]
        reply = REPLIES.get(body.get("type"))
        if reply is not None:
            send(sock, me, msg["src"], dict(reply, in_reply_to=body["msg_id"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
