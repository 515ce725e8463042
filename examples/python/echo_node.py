#!/usr/bin/env python3
"""A squall node in plain Python (stdlib only), written from PROTOCOL.md.

It connects to the router named by SQUALL_ROUTER, introduces itself with `hello`
(carrying the run's secret from SQUALL_TOKEN, without which the router hangs up),
answers `init` with `init_ok`, and then answers every `echo` request with `echo_ok`.
Any other request gets error 10 (not supported).
"""
import json
import os
import socket
import sys


def send(sock, src, dest, body):
    line = json.dumps({"src": src, "dest": dest, "body": body}, separators=(",", ":"))
    sock.sendall(line.encode() + b"\n")


def main():
    node_id = os.environ["SQUALL_NODE_ID"]
    host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    send(sock, node_id, "router", {"type": "hello", "node_id": node_id,
                                   "token": os.environ["SQUALL_TOKEN"],
                                   "incarnation": int(os.environ["SQUALL_INCARNATION"])})
    reader = sock.makefile("rb")
    for raw in reader:
        msg = json.loads(raw)
        body = msg["body"]
        kind = body.get("type")
        if kind == "init":
            send(sock, node_id, msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
        elif kind == "echo":
            reply = {"type": "echo_ok", "in_reply_to": body["msg_id"], "echo": body["echo"]}
            send(sock, node_id, msg["src"], reply)
        elif "msg_id" in body:
            reply = {"type": "error", "in_reply_to": body["msg_id"], "code": 10,
                     "text": "not supported: %s" % kind}
            send(sock, node_id, msg["src"], reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
