#!/usr/bin/env python3
"""Writes a large, correct squall history for measuring `squall check`.

    scripts/gen-history.py --workload write-once|lin-kv --mb 30 --out DIR [--seed 1]

DIR becomes a run directory: `history.jsonl` of about --mb megabytes, plus the
`run.json` and `verdict.json` that `squall check DIR/history.jsonl` needs to judge it by
the run's own checkers (copy the history elsewhere to check it with lincheck alone).
The history is linearizable by construction: a few clients run ops concurrently against
one simulated store, and each op takes effect at its completion. Some ops fail (no
effect) or end `info` (effect decided by a coin; the process is then replaced, as the
harness does). After the main phase comes a quiet window in which every node reads
every key, so termination and final reads are judged too. The verdict of a generated
history is `valid`; with --corrupt one read returns a value never written, so it is
`invalid`.
"""

import argparse
import json
import os
import random

NODES = ["n1", "n2", "n3", "n4", "n5"]
NEMESIS = {"kinds": [], "interval_ms": 1000, "drop_p": 0.1, "dup_p": 0.05, "reorder_p": 0.1,
           "delay_base_ms": 5, "delay_jitter_ms": 20, "delay_dist": "uniform",
           "kill_restart_after_ms": 1000, "amnesia": False, "recovery_ms": 5000}


class Writer:
    def __init__(self, path):
        self.f = open(path, "w")
        self.index = 0
        self.bytes = 0
        self.time = 1_000_000

    def event(self, process, ty, f, value, node, error=None):
        self.time += random.randint(1_000, 200_000)
        ev = {"index": self.index, "process": process, "type": ty, "f": f,
              "value": value, "time": self.time, "node": node}
        if error is not None:
            ev["error"] = error
        line = json.dumps(ev, separators=(",", ":")) + "\n"
        self.f.write(line)
        self.bytes += len(line)
        self.index += 1


def write_once_op(store, keys_lo, value_next):
    """(f, invoke value, apply) for one write-once op; apply(take_effect) -> ok value."""
    if random.random() < 0.5:
        key = random.randint(keys_lo, keys_lo + 7)
        value = value_next

        def apply(effect):
            if effect and key not in store:
                store[key] = value
            decided = store.get(key)
            if decided is None:  # a propose that took no effect cannot answer ok
                return None
            return {"ballot": {"node": "n1", "round": 1}, "key": key, "rounds": 1,
                    "value": decided}
        return "propose", {"key": key, "value": value}, apply
    key = random.randint(max(0, keys_lo - 8), keys_lo + 7)
    return "read", {"key": key}, lambda effect: {"key": key, "value": store.get(key)}


def lin_kv_op(store, keys, value_next):
    key = random.randrange(keys)
    r = random.random()
    if r < 0.4:
        return "read", {"key": key}, lambda effect: (
            {"key": key, "value": store[key]} if key in store else ("error 20: not found"))
    if r < 0.75:
        def write(effect):
            if effect:
                store[key] = value_next
            return {"key": key, "value": value_next}
        return "write", {"key": key, "value": value_next}, write
    frm = store.get(key, 1)

    def cas(effect):
        if key not in store:
            return "error 20: not found"
        if store[key] != frm:
            return "error 22: precondition failed"
        if effect:
            store[key] = value_next
        return {"from": frm, "key": key, "to": value_next}
    return "cas", {"from": frm, "key": key, "to": value_next}, cas


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", choices=["write-once", "lin-kv"], required=True)
    ap.add_argument("--mb", type=float, default=30)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--keys", type=int, default=64, help="lin-kv keys")
    ap.add_argument("--corrupt", action="store_true")
    args = ap.parse_args()
    random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    w = Writer(os.path.join(args.out, "history.jsonl"))
    target = int(args.mb * 1_000_000)
    store = {}
    process_next = args.clients
    procs = list(range(args.clients))
    open_ops = {}  # client slot -> (f, value, apply, node)
    value_next = 1
    keys_lo = 0
    wo = args.workload == "write-once"
    corrupted = False
    while w.bytes < target * 0.9 or open_ops:
        slot = random.randrange(args.clients)
        if slot in open_ops:
            f, value, apply, node = open_ops.pop(slot)
            r = random.random()
            proc = procs[slot]
            if r < 0.01:
                apply(random.random() < 0.5)
                w.event(proc, "info", f, value, node, "timeout")
                procs[slot] = process_next
                process_next += 1
                continue
            out = None if r < 0.03 else apply(True)
            if out is None or isinstance(out, str):
                w.event(proc, "fail", f, value, node, out or "error 11: no leader known")
                continue
            if args.corrupt and not corrupted and f == "read" and out.get("value"):
                out = dict(out, value=10**9)
                corrupted = True
            w.event(proc, "ok", f, out, node)
        elif w.bytes < target * 0.9:
            if wo:
                f, value, apply = write_once_op(store, keys_lo, value_next)
                if random.random() < 0.05:
                    keys_lo += 1
            else:
                f, value, apply = lin_kv_op(store, args.keys, value_next)
            value_next += 1
            node = random.choice(NODES)
            open_ops[slot] = (f, value, apply, node)
            w.event(procs[slot], "invoke", f, value, node)
    # The quiet window: every node reads every key once, one client at a time.
    quiet_from = w.time + 1
    keys = range(keys_lo + 8) if wo else range(args.keys)
    proc = procs[0]
    for key in keys:
        if wo and key not in store:
            continue
        for node in NODES:
            w.event(proc, "invoke", "read", {"key": key}, node)
            if key in store:
                w.event(proc, "ok", "read", {"key": key, "value": store[key]}, node)
            else:
                w.event(proc, "fail", "read", {"key": key}, node, "error 20: not found")
    w.f.close()
    run = {"workload": args.workload, "algorithm": "paxos", "node_cmd": None,
           "node_bin": "squall-node", "nodes": 5, "clients": args.clients, "rate": 100.0,
           "time_limit_ms": w.time // 1_000_000, "seed": args.seed, "op_timeout_ms": 1000,
           "results_dir": args.out, "bugs": [], "params": [],
           "instances": keys_lo + 8 if wo else args.keys, "contention": 2,
           "late_percent": 10, "mode": "free", "nemesis": NEMESIS, "schedule_from": None,
           "version": "0.1.0"}
    verdict = {"check_input": {"live_nodes": NODES, "quiet_from": quiet_from},
               "checkers": [], "faulty_nodes": [], "interrupted": False,
               "verdict": "invalid" if args.corrupt else "valid", "reason": "generated"}
    for name, obj in (("run.json", run), ("verdict.json", verdict)):
        with open(os.path.join(args.out, name), "w") as f:
            json.dump(obj, f, indent=2)
    print(f"{args.out}/history.jsonl: {w.index} events, {w.bytes} bytes, "
          f"{len(store)} keys decided/written")


if __name__ == "__main__":
    main()
