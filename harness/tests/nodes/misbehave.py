#!/usr/bin/env python3
"""A node that misbehaves in one of several ways, for squall's own tests.

MODE (first argument):
  garbage    answers init, then writes a line that is not JSON, then echoes normally
  oversized  answers init, then writes one line larger than the 1 MiB frame limit
  silent     connects and never says hello
  crash      answers init, then exits with status 3 after the first request
  hang       answers init, then never answers anything
"""
import json
import os
import socket
import sys
import time


def send(sock, src, dest, body):
    sock.sendall(json.dumps({"src": src, "dest": dest, "body": body}).encode() + b"\n")


def main():
    mode = sys.argv[1]
    me = os.environ["SQUALL_NODE_ID"]
    host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    if mode == "silent":
        time.sleep(3600)
        return 0
    send(sock, me, "router", {"type": "hello", "node_id": me, "token": os.environ["SQUALL_TOKEN"]})
    for raw in sock.makefile("rb"):
        msg = json.loads(raw)
        body = msg["body"]
        if body.get("type") == "init":
            send(sock, me, msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
            if mode == "garbage" and me == "n1":
                sock.sendall(b"this is not json\n")
            if mode == "oversized" and me == "n1":
                sock.sendall(b"{" + b"x" * (2 << 20) + b"}\n")
            continue
        if mode == "hang":
            continue
        if mode == "crash" and me == "n1":
            return 3
        if body.get("type") == "echo":
            send(sock, me, msg["src"], {"type": "echo_ok", "in_reply_to": body["msg_id"], "echo": body["echo"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
