#!/usr/bin/env python3
"""Writes a named fault plan (a schedule.json for five nodes) for the teeth matrix and
the mutant sweep: the fault a mutant needs, aimed by a trigger or a message type.

    scripts/plan.py NAME TIME_LIMIT_MS PATH     (prints PATH)

Plans: decided-late, promise-then-crash.
"""
import json, sys
name, limit, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
nodes = [f"n{i}" for i in range(1, 6)]
events = []
if name == "decided-late":
    # Decisions reach other nodes 300 ms late: a second proposer for a decided
    # instance runs a ballot and must adopt the value it finds accepted.
    events.append({"id": 1, "at_ms": 0, "action": "link_faults", "links": "all",
                   "delay": {"dist": "constant", "base_ms": 300, "jitter_ms": 0},
                   "msg_types": ["decided"]})
elif name == "promise-then-crash":
    # Slow links (so concurrent proposers overlap) and, every 3rd promise, SIGKILL its
    # sender at once and restart it: an acceptor that did not sync its promise forgets
    # it and may then accept a lower ballot.
    events.append({"id": 1, "at_ms": 0, "action": "link_faults", "links": "all",
                   "delay": {"dist": "uniform", "base_ms": 40, "jitter_ms": 80}})
    for k in range(100):
        on = {"msg_type": "promise", "nth": 2 + 3 * k}
        events.append({"id": 2 * k + 2, "on": on, "action": "kill", "node": "$src"})
        events.append({"id": 2 * k + 3, "on": on, "action": "restart", "node": "$src"})
else:
    sys.exit(f"unknown plan {name}")
json.dump({"nodes": nodes, "time_limit_ms": limit, "recovery_ms": 5000,
           "events": events}, open(path, "w"), indent=1)
print(path)
