#!/usr/bin/env python3
"""Where a Paxos decision's time goes, one run of `squall bench rounds` at a time.

Usage: scripts/rounds-phases.py RUN_DIR [--rtt US]

For every instance decided in its first ballot, from the client's first `propose`
invoke (history.jsonl), the router's message log (messages.jsonl: `sent_us` is when the
router read a message) and the nodes' stamped reports (reports.jsonl: `made`), it splits
the time until the value was chosen into:

  invoke -> ballot durable    the client's request reaches the proposer, which syncs
                              its ballot (ballot_started report, node stamp)
  ballot -> prepare out       the proposer's prepares reach the router
  prepare -> promises         the router's prepares until the majority-th promise is back
  promises -> accept out      the proposer turns the promises into accepts
  accept -> chosen            the accepts until the majority-th acceptor has durably
                              accepted (accepted report, node stamp)

and prints medians and means in µs, and in round trips when --rtt gives one (the
`rtt_us` of the run's cell in rounds.json is used when the run sits in a bench
directory). Reads only what every free-running run writes.
"""
import argparse
import json
import os
import statistics
from collections import defaultdict


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cell_rtt(run_dir):
    rounds = os.path.join(run_dir, "..", "..", "rounds.json")
    if not os.path.exists(rounds):
        return None
    with open(rounds) as f:
        cells = json.load(f)["cells"]
    real = os.path.realpath(run_dir)
    for c in cells:
        if os.path.realpath(c["run_dir"]) == real:
            return c["rtt_us"]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--rtt", type=float, help="round trip in µs for the RTT column")
    a = ap.parse_args()
    with open(os.path.join(a.run_dir, "run.json")) as f:
        nodes = json.load(f)["nodes"]
    majority = nodes // 2 + 1
    rtt = a.rtt or cell_rtt(a.run_dir)

    invoke = {}
    for e in jsonl(os.path.join(a.run_dir, "history.jsonl")):
        if e.get("f") == "propose" and e["type"] == "invoke":
            invoke.setdefault(e["value"]["key"], e["time"] / 1000)
    sent = defaultdict(lambda: defaultdict(list))
    for m in jsonl(os.path.join(a.run_dir, "messages.jsonl")):
        if m.get("key") is not None:
            sent[m["key"]][m["type"]].append(m["sent_us"])
    ballots = defaultdict(set)
    started = {}
    accepted = defaultdict(list)
    for r in jsonl(os.path.join(a.run_dir, "reports.jsonl")):
        rep, at = r["report"], r.get("made", r["time"]) / 1000
        key = rep["key"]
        if rep["type"] == "ballot_started":
            ballots[key].add((rep["ballot"]["round"], rep["ballot"]["node"]))
            started[key] = min(started.get(key, at), at)
        elif rep["type"] == "accepted":
            accepted[key].append(at)

    phases = defaultdict(list)
    for key, t0 in invoke.items():
        m = sent[key]
        if len(ballots[key]) != 1 or key not in started:
            continue  # contended: more than one ballot
        if len(m["promise"]) < majority or len(accepted[key]) < majority:
            continue
        prepare = min(m["prepare"])
        promises = sorted(m["promise"])[majority - 1]
        accept = min(m["accept"])
        chosen = sorted(accepted[key])[majority - 1]
        steps = [
            ("invoke -> ballot durable", started[key] - t0),
            ("ballot -> prepare out", prepare - started[key]),
            ("prepare -> promises", promises - prepare),
            ("promises -> accept out", accept - promises),
            ("accept -> chosen", chosen - accept),
            ("invoke -> chosen", chosen - t0),
        ]
        for name, us in steps:
            phases[name].append(us)

    if not phases:
        print("no instance decided in a single uncontended ballot")
        return
    n = len(phases["invoke -> chosen"])
    print(f"{a.run_dir}: {nodes} nodes, {n} instances decided in one ballot")
    print()
    head = "| phase | p50 µs | mean µs |" + (" p50 RTT |" if rtt else "")
    print(head)
    print("|---|---|---|" + ("---|" if rtt else ""))
    for name, xs in phases.items():
        p50 = statistics.median(xs)
        row = f"| {name} | {p50:.0f} | {statistics.mean(xs):.0f} |"
        if rtt:
            row += f" {p50 / rtt:.2f} |"
        print(row)
    if rtt:
        print()
        print(f"round trip (routed, idle): {rtt:.1f} µs")


if __name__ == "__main__":
    main()
