//! The router with real sockets: admission races that the gate's book alone cannot show.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::*;

async fn connect(router: &Router, hello: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(router.local_addr()).await.unwrap();
    s.write_all(hello.as_bytes()).await.unwrap();
    BufReader::new(s)
}

fn hello(node: &str, token: &str, incarnation: u64) -> String {
    let body = serde_json::json!({
        "type": "hello", "node_id": node, "token": token, "incarnation": incarnation
    });
    format!("{{\"src\":\"{node}\",\"dest\":\"router\",\"body\":{body}}}\n")
}

async fn next_line(conn: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), conn.read_line(&mut line))
        .await
        .expect("a line within 5 s")
        .unwrap();
    line
}

/// A router over `names` whose gate admits `n1` with token `tok`, with its events and
/// the set its tasks run in.
async fn start(
    names: &[&str],
) -> (
    Router,
    mpsc::UnboundedReceiver<RouterEvent>,
    Gate,
    JoinSet<()>,
) {
    let addrs: Vec<String> = names.iter().map(|a| a.to_string()).collect();
    let gate = Gate::with_token("tok", &["n1".to_string()]);
    let mut tasks = JoinSet::new();
    let (router, events) = Router::start(&addrs, gate.clone(), Instant::now(), &mut tasks)
        .await
        .unwrap();
    (router, events, gate, tasks)
}

/// A killed node's old connection may not have closed yet when the restarted one says
/// hello: the new incarnation is admitted and gets the traffic; a second hello for it
/// is refused and changes nothing.
#[tokio::test]
async fn restart_is_admitted_while_the_killed_connection_is_still_open() {
    let (router, mut events, gate, mut tasks) = start(&["harness", "n1", "c1"]).await;
    gate.spawned("n1", 0);
    let _old = connect(&router, &hello("n1", "tok", 0)).await;
    assert!(matches!(
        events.recv().await,
        Some(RouterEvent::Connected { .. })
    ));
    // Killed and restarted; `_old` stays open, its EOF not yet read.
    gate.spawned("n1", 1);
    let mut new = connect(&router, &hello("n1", "tok", 1)).await;
    assert!(matches!(
        events.recv().await,
        Some(RouterEvent::Connected { .. })
    ));
    let mut fake = connect(&router, &hello("n1", "tok", 1)).await;
    router.send_local("harness", "n1", r#"{"type":"init","msg_id":1}"#);
    assert!(next_line(&mut new).await.contains("\"init\""));
    assert_eq!(next_line(&mut fake).await, "", "the duplicate is closed");
    let refused = gate.rejections();
    assert_eq!(refused.by_reason.get("duplicate"), Some(&1), "{refused:?}");
    assert!(events.try_recv().is_err(), "no event blames a node");
    tasks.abort_all();
}

/// A local inbox nobody reads fills up in bytes long before its message capacity: what
/// does not fit is counted as overflow, and reading the inbox makes room again.
#[tokio::test]
async fn a_local_inbox_is_bounded_in_bytes_and_reading_frees_it() {
    let (router, _events, _gate, mut tasks) = start(&["harness", "n1", "c1"]).await;
    let mut inbox = router.register_local("c1", 1024);
    let chunk_bytes = 256 * 1024;
    let body = format!(r#"{{"type":"big","pad":"{}"}}"#, "x".repeat(chunk_bytes));
    let fit = INBOX_BYTES_MAX / (body.len() + "harness".len());
    let sent = fit + 10;
    for _ in 0..sent {
        router.send_local("harness", "c1", &body);
    }
    let link = |router: &Router| router.stats().links["harness->c1"].clone();
    let stats = link(&router);
    assert_eq!(stats.delivered, fit as u64, "{stats:?}");
    assert_eq!(stats.dropped.get("overflow"), Some(&10), "{stats:?}");
    for _ in 0..fit {
        let got = inbox.try_recv().expect("a queued message");
        assert_eq!(got.body.len(), body.len());
    }
    assert!(inbox.try_recv().is_err(), "nothing past the cap was queued");
    router.send_local("harness", "c1", &body);
    assert_eq!(link(&router).delivered, fit as u64 + 1, "room came back");
    tasks.abort_all();
}

/// Holds `n2 -> n1` until `open` is set, then reports the link released.
struct HoldUntil {
    open: Arc<std::sync::atomic::AtomicBool>,
    released: bool,
}

impl LinkPolicy for HoldUntil {
    fn decide(&mut self, src: &str, dest: &str, _ty: &str, _now_us: u64) -> Decision {
        use std::sync::atomic::Ordering;
        if (src, dest) == ("n2", "n1") && !self.open.load(Ordering::SeqCst) {
            Decision::Hold
        } else {
            Decision::deliver()
        }
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn take_released(&mut self) -> Vec<(String, String)> {
        if self.released || !self.open.load(std::sync::atomic::Ordering::SeqCst) {
            return Vec::new();
        }
        self.released = true;
        vec![("n2".into(), "n1".into())]
    }
}

/// A held copy released while one task routes (before that task writes anything) must
/// still reach its destination before a later copy on its link that another task routes
/// and writes at once: per-link FIFO across tasks. Chandy-Lamport's snapshots lost money
/// under clogs alone when a marker overtook the transfers held before it.
#[tokio::test]
async fn a_released_hold_is_not_overtaken_by_a_later_copy_routed_elsewhere() {
    let (router, mut events, gate, mut tasks) = start(&["harness", "n1", "n2", "n3"]).await;
    gate.spawned("n1", 0);
    let mut n1 = connect(&router, &hello("n1", "tok", 0)).await;
    assert!(matches!(
        events.recv().await,
        Some(RouterEvent::Connected { .. })
    ));
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    router.set_policy(Box::new(HoldUntil {
        open: open.clone(),
        released: false,
    }));
    let line =
        |t: &str| format!("{{\"src\":\"n2\",\"dest\":\"n1\",\"body\":{{\"type\":\"{t}\"}}}}\n");
    router.route(
        "n2",
        "n1",
        "transfer",
        Default::default(),
        line("transfer").into_bytes(),
    );
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    // n3's reader routes something and, before it writes, its routing releases the hold.
    router.route_into(
        "n3",
        "harness",
        "other",
        Default::default(),
        b"{}\n".to_vec(),
        false,
    );
    // n2's reader routes its marker and writes at once.
    router.route(
        "n2",
        "n1",
        "marker",
        Default::default(),
        line("marker").into_bytes(),
    );
    router.flush();
    assert!(
        next_line(&mut n1).await.contains("transfer"),
        "the held copy first"
    );
    assert!(next_line(&mut n1).await.contains("marker"));
    tasks.abort_all();
}
