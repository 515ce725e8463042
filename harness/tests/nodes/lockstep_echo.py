#!/usr/bin/env python3
"""An echo node that supports lockstep mode, written from PROTOCOL.md section 10.

Each echo request sets a timer (virtual time, kept by the harness); the reply goes out
when the timer fires, so the run exercises timer_set, timer_fired and step_done.
Free-running (no "lockstep" in init) it answers echo at once.

MODE (first argument):
  ok        behaves
  hang      n1 stops answering steps after its third request
  chatter   n1 sends a line after step_done in its second request's step
"""
import json
import os
import socket
import sys


def line(src, dest, body):
    return json.dumps({"src": src, "dest": dest, "body": body}, separators=(",", ":")) + "\n"


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    me = os.environ["SQUALL_NODE_ID"]
    host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hello = {"type": "hello", "node_id": me, "token": os.environ["SQUALL_TOKEN"]}
    sock.sendall(line(me, "router", hello).encode())
    lockstep = False
    pending = {}  # timer_id -> (client, msg_id, echo)
    next_timer = 1
    requests = 0
    for raw in sock.makefile("rb"):
        if not raw.strip():
            continue
        msg = json.loads(raw)
        body = msg["body"]
        kind = body.get("type")
        out = []
        extra = ""
        if kind == "init":
            lockstep = bool(body.get("lockstep"))
            out.append(line(me, msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"], "lockstep": True}))
        elif kind == "echo":
            requests += 1
            if mode == "hang" and me == "n1" and requests >= 3:
                continue  # never finishes this step
            if mode == "chatter" and me == "n1" and requests == 2:
                extra = line(me, "harness", {"type": "step_done"})
            reply = {"type": "echo_ok", "in_reply_to": body["msg_id"], "echo": body["echo"]}
            if lockstep:
                pending[next_timer] = (msg["src"], reply)
                out.append(line(me, "harness", {"type": "timer_set", "timer_id": next_timer, "after_ms": 3}))
                next_timer += 1
            else:
                out.append(line(me, msg["src"], reply))
        elif kind == "timer_fired":
            client, reply = pending.pop(body["timer_id"])
            out.append(line(me, client, reply))
        elif "msg_id" in body:
            out.append(line(me, msg["src"], {"type": "error", "in_reply_to": body["msg_id"], "code": 10,
                                            "text": "not supported: %s" % kind}))
        if lockstep:
            out.append(line(me, "harness", {"type": "step_done"}))
        sock.sendall(("".join(out) + extra).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
