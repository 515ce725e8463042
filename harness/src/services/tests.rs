//! The services' semantics, request by request.

use serde_json::{json, Value};

use super::*;

/// Sends `body` from `src` and returns the reply as JSON.
fn ask(svc: &mut Service, src: &str, body: Value) -> Value {
    let reply = svc.handle(src, &body.to_string()).expect("a reply");
    serde_json::from_str(&reply).expect("reply is JSON")
}

fn code(v: &Value) -> Option<u64> {
    (v["type"] == "error").then(|| v["code"].as_u64()).flatten()
}

#[test]
fn lin_kv_reads_writes_and_cas_with_maelstrom_errors() {
    let mut s = Service::new("lin-kv", 1).unwrap();
    let r = ask(&mut s, "n0", json!({"type":"read","msg_id":1,"key":"x"}));
    assert_eq!((code(&r), &r["in_reply_to"]), (Some(20), &json!(1)));
    let r = ask(
        &mut s,
        "n0",
        json!({"type":"cas","msg_id":2,"key":"x","from":1,"to":2}),
    );
    assert_eq!(code(&r), Some(20));
    let r = ask(
        &mut s,
        "n0",
        json!({"type":"cas","msg_id":3,"key":"x","from":1,"to":[2,"a"],"create_if_not_exists":true}),
    );
    assert_eq!(r["type"], "cas_ok");
    let r = ask(&mut s, "n1", json!({"type":"read","msg_id":4,"key":"x"}));
    assert_eq!(r, json!({"type":"read_ok","value":[2,"a"],"in_reply_to":4}));
    let r = ask(
        &mut s,
        "n1",
        json!({"type":"cas","msg_id":5,"key":"x","from":1,"to":3}),
    );
    assert_eq!(code(&r), Some(22));
    let r = ask(
        &mut s,
        "n1",
        json!({"type":"write","msg_id":6,"key":"x","value":-5}),
    );
    assert_eq!(r["type"], "write_ok");
    let r = ask(&mut s, "n0", json!({"type":"frob","msg_id":7}));
    assert_eq!(code(&r), Some(12), "no key: malformed");
    let r = ask(&mut s, "n0", json!({"type":"frob","msg_id":7,"key":1}));
    assert_eq!(code(&r), Some(10));
    assert!(s.handle("n0", r#"{"type":"read","key":"x"}"#).is_none());
}

#[test]
fn lin_tso_is_strictly_increasing() {
    let mut s = Service::new("lin-tso", 1).unwrap();
    let ts: Vec<u64> = (0..5)
        .map(|i| {
            ask(&mut s, "n0", json!({"type":"ts","msg_id":i}))["ts"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
}

/// seq-kv serves stale reads, but never older than what the client saw or wrote, and
/// a client always reads its own write.
#[test]
fn seq_kv_reads_are_stale_but_monotonic_per_client() {
    let mut s = Service::new("seq-kv", 7).unwrap();
    for i in 0..10 {
        ask(
            &mut s,
            "n0",
            json!({"type":"write","msg_id":i,"key":"k","value":i}),
        );
    }
    let mut stale = 0;
    let mut last = -1i64;
    for i in 0..200 {
        let r = ask(
            &mut s,
            "n1",
            json!({"type":"read","msg_id":100+i,"key":"k"}),
        );
        let v = r["value"].as_i64().unwrap();
        assert!(v >= last, "n1 read {v} after {last}");
        stale += i64::from(v < 9);
        last = v;
        let own = ask(
            &mut s,
            "n0",
            json!({"type":"read","msg_id":500+i,"key":"k"}),
        );
        assert_eq!(own["value"], 9, "n0 reads its own last write");
    }
    assert!(stale > 0, "some reads of n1 were stale");
    assert_eq!(last, 9, "n1 catches up");
    // A cas acts on the newest value even for a client that read an old one.
    let mut s = Service::new("seq-kv", 7).unwrap();
    ask(
        &mut s,
        "n0",
        json!({"type":"write","msg_id":1,"key":"k","value":1}),
    );
    ask(
        &mut s,
        "n0",
        json!({"type":"write","msg_id":2,"key":"k","value":2}),
    );
    let r = ask(
        &mut s,
        "n1",
        json!({"type":"cas","msg_id":3,"key":"k","from":2,"to":3}),
    );
    assert_eq!(r["type"], "cas_ok");
}

/// lww-kv's replicas diverge and converge: the last write wins once they merge.
#[test]
fn lww_kv_converges_to_the_last_write() {
    let mut s = Service::new("lww-kv", 3).unwrap();
    for i in 0..20 {
        ask(
            &mut s,
            "n0",
            json!({"type":"write","msg_id":i,"key":"k","value":i}),
        );
    }
    let reads: Vec<Value> = (0..50)
        .map(|i| {
            ask(
                &mut s,
                "n1",
                json!({"type":"read","msg_id":100+i,"key":"k"}),
            )["value"]
                .clone()
        })
        .collect();
    assert_eq!(reads.last(), Some(&json!(19)), "{reads:?}");
}

/// The same seed gives the same answers: the services replay with the run.
#[test]
fn services_are_a_function_of_the_seed() {
    let run = |seed| {
        let mut s = Service::new("seq-kv", seed).unwrap();
        (0..50)
            .map(|i| {
                let w = json!({"type":"write","msg_id":i,"key":"k","value":i});
                ask(&mut s, "n0", w);
                ask(&mut s, "n1", json!({"type":"read","msg_id":i,"key":"k"}))["value"].clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert!(Service::new("kv", 1).is_none());
}

#[test]
fn a_partition_cuts_the_minoritys_service_links_and_leaves_the_majoritys() {
    let nodes: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
    let link = |a: &str, b: &str| (a.to_string(), b.to_string());
    // n0 and n1 apart from n2, n3 and n4, both ways.
    let mut cut = Vec::new();
    for a in ["n0", "n1"] {
        for b in ["n2", "n3", "n4"] {
            cut.push(link(a, b));
            cut.push(link(b, a));
        }
    }
    let extra = partition_cut(&nodes, &cut);
    let cut_off: BTreeSet<&str> = extra
        .iter()
        .filter(|(_, d)| SERVICES.contains(&d.as_str()))
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(cut_off, BTreeSet::from(["n0", "n1"]));
    assert!(extra.contains(&link("lin-kv", "n0")), "both ways");
    assert_eq!(extra.len(), 2 * 2 * SERVICES.len());
    // One link cut one way isolates nobody.
    assert!(partition_cut(&nodes, &[link("n0", "n1")]).is_empty());
}
