#!/usr/bin/env python3
"""Writes a named fault plan (a schedule.json; five nodes unless the plan says otherwise) for the teeth matrix and
the mutant sweep: the fault a mutant needs, aimed by a trigger or a message type.

    scripts/plan.py NAME TIME_LIMIT_MS PATH     (prints PATH)

Plans: decided-late (5 nodes), bridge-promise-crash (3 nodes: run with --nodes 3).
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
elif name == "bridge-promise-crash":
    # Three nodes; n1 and n3 cannot talk, n2 (the bridge) talks to both, so every
    # quorum of two holds n2. On every other promise n2 sends to n3, SIGKILL n2 at once
    # and restart it. Correct Paxos has synced that promise and is unharmed. An acceptor
    # that did not sync it forgets it, then accepts n1's lower ballot (a resend of its
    # `accept`): n1 decides with {n1, n2} and n3, whose promise quorum {n2, n3} saw no
    # accepted value, decides its own value with {n2, n3} (seed 003's split decision,
    # made by a forgotten promise).
    nodes = nodes[:3]
    events.append({"id": 1, "at_ms": 0, "action": "partition", "shape": "bridge n2",
                   "cut": [["n1", "n3"], ["n3", "n1"]]})
    for k in range(200):
        on = {"msg_type": "promise", "src": "n2", "dest": "n3", "nth": 1 + 2 * k}
        events.append({"id": 2 * k + 2, "on": on, "action": "kill", "node": "n2"})
        events.append({"id": 2 * k + 3, "on": on, "action": "restart", "node": "n2"})
else:
    sys.exit(f"unknown plan {name}")
json.dump({"nodes": nodes, "time_limit_ms": limit, "recovery_ms": 5000,
           "events": events}, open(path, "w"), indent=1)
print(path)
