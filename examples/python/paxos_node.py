#!/usr/bin/env python3
"""A Paxos node for squall's write-once workload, in stdlib Python, from PROTOCOL.md.

One single-decree Paxos instance per key. Every node is proposer, acceptor and learner.

- Acceptor: promises (`prepare` -> `promise` or `nack`) and acceptances (`accept` ->
  `accepted`) are appended to SQUALL_DATA_DIR/paxos.log and fsynced before the reply
  leaves; the log is read back on start (a torn last line is cut off).
- Proposer: a `propose` starts ballot (round, node) above every round seen for the key;
  the ballot and its value are logged and fsynced before `prepare` goes out, so a restart
  never reuses a ballot and resumes every undecided proposal even though its client has
  gone. A nack or a phase that times out (100 ms) backs off (full jitter, 10 ms doubling
  to 1 s, from an RNG seeded with SQUALL_SEED, the node id and the incarnation) and
  tries a higher ballot.
- Learner: a decision is logged and fsynced, reported to the harness (`decided`), given
  to the waiting clients and pushed to every other node until each answers
  `decided_ok` (resent with backoff). A node asked about a key it has not learned answers
  `read` with null and asks its peers (`learn`); an acceptor that knows a decision
  answers `prepare`/`accept` with it. So every live node can answer every proposed key in
  the quiet window.
- Lockstep (PROTOCOL.md section 10): timers are the harness's, and the node reads no
  clock; free-running it keeps its own timers on the monotonic clock.

Mutants (for showing what catches them):
  --bug memory-acceptor  promises and acceptances are kept in memory only (a SIGKILL
                         loses them); decisions and proposals are still logged
  --bug no-fsync         the log is written but never fsynced (only a lossy file system
                         can tell)
  --bug wall-clock       backoff drawn from time.time(): lockstep replays diverge
"""
import argparse
import heapq
import json
import os
import random
import selectors
import socket
import sys
import time

PHASE_MS = 100  # a ballot phase that hears no quorum in this long is retried
BACKOFF_BASE_MS = 10
BACKOFF_MAX_MS = 1000
RESEND_TICK_MS = 200  # decided pushes are resent on this tick, backing off per key
RESEND_MAX_TICKS = 10
RESEND_TIMER = 1  # timer ids: 1 for the resend tick, 2 * key + 2 for a key's proposer
BUGS = ("memory-acceptor", "no-fsync", "wall-clock")


def ballot_json(b):
    return {"round": b[0], "node": b[1]}


def ballot_of(j):
    return (int(j["round"]), str(j["node"])) if j else None


class Log:
    """Append-only JSON-lines log; `sync` makes what was appended durable."""

    def __init__(self, data_dir, fsync=True):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "paxos.log")
        self.fsync = fsync
        self.records, good = [], 0
        if os.path.exists(self.path):
            with open(self.path, "rb") as f:
                data = f.read()
            for raw in data.split(b"\n")[:-1]:  # a last line without "\n" is torn
                try:
                    self.records.append(json.loads(raw))
                except ValueError:
                    break
                good += len(raw) + 1
        self.file = open(self.path, "ab")
        self.file.truncate(good)
        if self.fsync:
            os.fsync(self.file.fileno())
            dir_fd = os.open(data_dir, os.O_RDONLY)
            os.fsync(dir_fd)
            os.close(dir_fd)
        self.pending = []

    def append(self, rec):
        self.pending.append(json.dumps(rec, separators=(",", ":")) + "\n")

    def sync(self):
        if self.pending:
            self.file.write("".join(self.pending).encode())
            self.file.flush()
            if self.fsync:
                os.fsync(self.file.fileno())
            self.pending = []


class Proposal:
    def __init__(self, value):
        self.value = value  # own value, until a promise brings an accepted one
        self.ballot = None
        self.phase = 0  # 0 backing off, 1 preparing, 2 accepting
        self.promises = {}  # node -> (accepted ballot, value) or None
        self.accepts = {}  # node -> True
        self.clients = []  # (client, msg_id) waiting for the decision
        self.attempts = 0
        self.rounds = 0  # ballots this node started for the key


class Node:
    def __init__(self, me, nodes, seed, incarnation, bugs, log):
        self.me, self.nodes, self.bugs, self.log = me, nodes, bugs, log
        self.peers = [n for n in nodes if n != me]
        self.quorum = len(nodes) // 2 + 1
        self.rng = random.Random("%s/%s/%s" % (seed, me, incarnation))
        self.out = []  # (dest, body) to send once the log is synced
        self.timers = []  # ("set", id, ms) / ("cancel", id, None) for the driver
        self.promised, self.accepted = {}, {}  # key -> ballot; key -> (ballot, value)
        self.decided = {}  # key -> value
        self.max_round = {}  # key -> highest round seen or started
        self.props = {}  # key -> Proposal
        self.unacked = {}  # key -> {peer: True} still to hear decided_ok
        self.resend = {}  # key -> [ticks until the next push, current interval]
        resume = {}
        for r in log.records:
            k = r["k"]
            if "p" in r:
                self.promised[k] = ballot_of(r["p"])
            if "a" in r:
                self.accepted[k] = (ballot_of(r["a"]), r["v"])
                self.promised[k] = max(self.promised.get(k) or ballot_of(r["a"]), ballot_of(r["a"]))
            if "d" in r:
                self.decided[k] = r["d"]
            if "b" in r:
                resume[k] = r["pv"]
                self.max_round[k] = max(self.max_round.get(k, 0), r["b"])
        self.resume = [(k, v) for k, v in resume.items() if k not in self.decided]

    # ---------------------------------------------------------------- output helpers

    def send(self, dest, body):
        self.out.append((dest, body))

    def durable(self, rec, acceptor=False):
        if not (acceptor and "memory-acceptor" in self.bugs):
            self.log.append(rec)

    def see_round(self, key, b):
        if b and b[0] > self.max_round.get(key, 0):
            self.max_round[key] = b[0]

    # ---------------------------------------------------------------- events

    def start(self):
        for key, value in self.resume:
            self.props[key] = Proposal(value)
            self.start_ballot(key)

    def on_message(self, src, body):
        kind = body.get("type")
        key = body.get("key")
        handler = getattr(self, "on_" + str(kind), None)
        if src.startswith("c"):
            if kind in ("propose", "read") and isinstance(key, int) and key >= 0:
                return handler(src, body)
            if "msg_id" in body:
                self.send(src, {"type": "error", "in_reply_to": body["msg_id"], "code": 10,
                                "text": "not supported: %s" % kind})
            return
        if src in self.peers and kind in PEER_MESSAGES and isinstance(key, int):
            try:
                handler(src, body)
            except (KeyError, TypeError, ValueError) as e:
                print("ignored a malformed %s from %s: %r" % (kind, src, e), file=sys.stderr)

    def deliver_local(self, body):
        """A message to this node itself is handled at once, not sent."""
        getattr(self, "on_" + body["type"])(self.me, body)

    def broadcast(self, body):
        for p in self.peers:
            self.send(p, body)
        self.deliver_local(body)

    def on_propose(self, client, body):
        key = body["key"]
        if key in self.decided:
            return self.reply_decided(key, client, body["msg_id"])
        prop = self.props.get(key)
        if prop is None:
            prop = self.props[key] = Proposal(body["value"])
            prop.clients.append((client, body["msg_id"]))
            self.start_ballot(key)
        else:
            prop.clients.append((client, body["msg_id"]))

    def on_read(self, client, body):
        key = body["key"]
        self.send(client, {"type": "read_ok", "in_reply_to": body["msg_id"],
                           "value": self.decided.get(key)})
        if key not in self.decided:
            for p in self.peers:
                self.send(p, {"type": "learn", "key": key})

    # proposer ---------------------------------------------------------------

    def start_ballot(self, key):
        prop = self.props[key]
        rnd = self.max_round.get(key, 0) + 1
        self.max_round[key] = rnd
        prop.ballot, prop.phase = (rnd, self.me), 1
        prop.promises, prop.accepts = {}, {}
        prop.rounds += 1
        self.durable({"k": key, "b": rnd, "pv": prop.value})
        self.send("harness", {"type": "ballot_started", "key": key,
                              "ballot": ballot_json(prop.ballot)})
        self.timers.append(("set", 2 * key + 2, PHASE_MS))
        self.broadcast({"type": "prepare", "key": key, "ballot": ballot_json(prop.ballot)})

    def back_off(self, key):
        prop = self.props[key]
        prop.phase = 0
        prop.attempts += 1
        cap = min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** min(prop.attempts - 1, 20))
        if "wall-clock" in self.bugs:
            wait = time.time_ns() // 1000 % cap
        else:
            wait = self.rng.randrange(cap)
        self.timers.append(("set", 2 * key + 2, max(1, wait)))

    def on_timer(self, timer_id):
        if timer_id == RESEND_TIMER:
            return self.resend_tick()
        key = (timer_id - 2) // 2
        prop = self.props.get(key)
        if prop is None:
            return
        if prop.phase == 0:
            self.start_ballot(key)
        else:
            self.back_off(key)

    def current(self, key, body):
        prop = self.props.get(key)
        if prop and prop.phase and ballot_of(body.get("ballot")) == prop.ballot:
            return prop
        return None

    def on_promise(self, src, body):
        key = body["key"]
        prop = self.current(key, body)
        if prop is None or prop.phase != 1:
            return
        acc = body.get("accepted")
        prop.promises[src] = (ballot_of(acc["ballot"]), acc["value"]) if acc else None
        if len(prop.promises) < self.quorum:
            return
        best = max((p for p in prop.promises.values() if p), default=None)
        if best:
            prop.value = best[1]
        prop.phase = 2
        self.timers.append(("set", 2 * key + 2, PHASE_MS))
        self.broadcast({"type": "accept", "key": key, "ballot": ballot_json(prop.ballot),
                        "value": prop.value})

    def on_accepted(self, src, body):
        key = body["key"]
        prop = self.current(key, body)
        if prop is None or prop.phase != 2:
            return
        prop.accepts[src] = True
        if len(prop.accepts) >= self.quorum:
            self.learn(key, prop.value, ballot=prop.ballot)

    def on_nack(self, src, body):
        key = body["key"]
        self.see_round(key, ballot_of(body.get("promised")))
        if self.current(key, body) is not None:
            self.back_off(key)

    # acceptor ---------------------------------------------------------------

    def admit(self, src, body):
        """The key and ballot of a prepare or accept this acceptor may take; None when it
        may not, after answering `decided` (the key is decided) or `nack` (the ballot is
        below the promise)."""
        key, b = body["key"], ballot_of(body["ballot"])
        self.see_round(key, b)
        if key in self.decided:
            self.to(src, {"type": "decided", "key": key, "value": self.decided[key]})
            return None
        promised = self.promised.get(key)
        if promised is not None and b < promised:
            self.to(src, {"type": "nack", "key": key, "ballot": body["ballot"],
                          "promised": ballot_json(promised)})
            return None
        return key, b

    def on_prepare(self, src, body):
        taken = self.admit(src, body)
        if taken is None:
            return
        key, b = taken
        if self.promised.get(key) != b:
            self.promised[key] = b
            self.durable({"k": key, "p": body["ballot"]}, acceptor=True)
        acc = self.accepted.get(key)
        accepted = {"ballot": ballot_json(acc[0]), "value": acc[1]} if acc else None
        self.to(src, {"type": "promise", "key": key, "ballot": body["ballot"],
                      "accepted": accepted})

    def on_accept(self, src, body):
        taken = self.admit(src, body)
        if taken is None:
            return
        key, b = taken
        if self.accepted.get(key) != (b, body["value"]):
            self.promised[key] = b
            self.accepted[key] = (b, body["value"])
            self.durable({"k": key, "a": body["ballot"], "v": body["value"]}, acceptor=True)
            self.send("harness", {"type": "accepted", "key": key, "ballot": body["ballot"],
                                  "value": body["value"]})
        self.to(src, {"type": "accepted", "key": key, "ballot": body["ballot"]})

    def to(self, dest, body):
        if dest == self.me:
            self.deliver_local(body)
        else:
            self.send(dest, body)

    # learner ----------------------------------------------------------------

    def learn(self, key, value, ballot=None):
        """Records a decision; `ballot` is set when this node's own ballot chose it, and
        then this node pushes it to every peer."""
        if key in self.decided:
            return
        self.decided[key] = value
        self.durable({"k": key, "d": value})
        prop = self.props.pop(key, None)
        report = {"type": "decided", "key": key, "value": value}
        if prop and prop.rounds:
            report["rounds"] = prop.rounds
        self.send("harness", report)
        if prop:
            self.timers.append(("cancel", 2 * key + 2, None))
            for client, msg_id in prop.clients:
                self.reply_decided(key, client, msg_id, prop.rounds, ballot)
        if ballot:
            self.unacked[key] = {p: True for p in self.peers}
            self.resend[key] = [1, 1]
            for p in self.peers:
                self.send(p, {"type": "decided", "key": key, "value": value})
            if len(self.resend) == 1:
                self.timers.append(("set", RESEND_TIMER, RESEND_TICK_MS))

    def reply_decided(self, key, client, msg_id, rounds=0, ballot=None):
        reply = {"type": "propose_ok", "in_reply_to": msg_id, "value": self.decided[key]}
        if rounds:
            reply["rounds"] = rounds
        if ballot:
            reply["ballot"] = ballot_json(ballot)
        self.send(client, reply)

    def resend_tick(self):
        for key in list(self.resend):
            left = self.resend[key]
            left[0] -= 1
            if left[0] > 0:
                continue
            left[1] = min(RESEND_MAX_TICKS, left[1] * 2)
            left[0] = left[1]
            for p in self.unacked[key]:
                self.send(p, {"type": "decided", "key": key, "value": self.decided[key]})
        if self.resend:
            self.timers.append(("set", RESEND_TIMER, RESEND_TICK_MS))

    def on_decided(self, src, body):
        self.learn(body["key"], body["value"])
        if src != self.me:
            self.send(src, {"type": "decided_ok", "key": body["key"]})

    def on_decided_ok(self, src, body):
        key = body["key"]
        self.unacked.get(key, {}).pop(src, None)
        if key in self.unacked and not self.unacked[key]:
            del self.unacked[key], self.resend[key]

    def on_learn(self, src, body):
        key = body["key"]
        if key in self.decided:
            self.send(src, {"type": "decided", "key": key, "value": self.decided[key]})


PEER_MESSAGES = ("prepare", "promise", "nack", "accept", "accepted", "decided",
                 "decided_ok", "learn")


# -------------------------------------------------------------------- the driver

def line(src, dest, body):
    return (json.dumps({"src": src, "dest": dest, "body": body}, separators=(",", ":"))
            + "\n").encode()


class Driver:
    """Owns the socket, the log and, free-running, the timers."""

    def __init__(self, bugs):
        self.me = os.environ["SQUALL_NODE_ID"]
        host, port = os.environ["SQUALL_ROUTER"].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bugs = bugs
        self.node = None
        self.lockstep = False
        self.deadlines = {}  # free-running: timer id -> monotonic deadline
        self.heap = []
        hello = {"type": "hello", "node_id": self.me, "token": os.environ["SQUALL_TOKEN"],
                 "incarnation": int(os.environ.get("SQUALL_INCARNATION", "0"))}
        self.sock.sendall(line(self.me, "router", hello))

    def handle(self, msg):
        """Handles one line; returns the bytes to send (log synced first)."""
        body = msg.get("body") or {}
        out = []
        if body.get("type") == "init" and self.node is None:
            self.lockstep = bool(body.get("lockstep"))
            log = Log(os.environ["SQUALL_DATA_DIR"], fsync="no-fsync" not in self.bugs)
            self.node = Node(self.me, body["node_ids"], os.environ.get("SQUALL_SEED", "0"),
                             os.environ.get("SQUALL_INCARNATION", "0"), self.bugs, log)
            out.append(line(self.me, msg["src"], {"type": "init_ok",
                                                  "in_reply_to": body["msg_id"],
                                                  "lockstep": True}))
            self.node.start()
        elif self.node is None:
            return out
        elif body.get("type") == "timer_fired" and msg.get("src") == "harness":
            self.node.on_timer(body["timer_id"])
        else:
            self.node.on_message(msg.get("src", ""), body)
        self.node.log.sync()
        for dest, b in self.node.out:
            out.append(line(self.me, dest, b))
        for op, tid, ms in self.node.timers:
            if self.lockstep and op == "set":
                out.append(line(self.me, "harness", {"type": "timer_set", "timer_id": tid,
                                                     "after_ms": ms}))
            elif self.lockstep:
                out.append(line(self.me, "harness", {"type": "timer_cancel", "timer_id": tid}))
            elif op == "set":
                self.deadlines[tid] = time.monotonic() + ms / 1000
                heapq.heappush(self.heap, (self.deadlines[tid], tid))
            else:
                self.deadlines.pop(tid, None)
        self.node.out, self.node.timers = [], []
        return out

    def run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        buf = b""
        while True:
            timeout = None
            if self.heap:
                timeout = max(0.0, self.heap[0][0] - time.monotonic())
            if sel.select(timeout):
                data = self.sock.recv(1 << 16)
                if not data:
                    return 0
                buf += data
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    self.on_line(raw)
            while self.heap and self.heap[0][0] <= time.monotonic():
                deadline, tid = heapq.heappop(self.heap)
                if self.deadlines.get(tid) == deadline:
                    del self.deadlines[tid]
                    self.sock.sendall(b"".join(self.handle(
                        {"src": "harness", "body": {"type": "timer_fired", "timer_id": tid}})))

    def on_line(self, raw):
        if not raw.strip():
            return
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict) or not isinstance(msg.get("body"), dict):
                raise ValueError("not an envelope")
        except ValueError:
            msg = {"src": "", "body": {}}
        out = self.handle(msg)
        if self.lockstep:
            out.append(line(self.me, "harness", {"type": "step_done"}))
        self.sock.sendall(b"".join(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bug", action="append", default=[], choices=BUGS)
    args = parser.parse_args()
    return Driver(frozenset(args.bug)).run()


if __name__ == "__main__":
    sys.exit(main())
