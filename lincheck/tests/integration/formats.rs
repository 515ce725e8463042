//! Parsers, format detection, names, and the `check_files` command.

use std::path::Path;

use lincheck::{
    cmd, generate_kv, CheckOptions, Format, GenConfig, Input, ModelKind, OpOutcome, Value,
};

#[test]
fn squall_jsonl_parses_and_ignores_unknown_fields() {
    let text = r#"{"index":0,"process":3,"type":"invoke","f":"write","value":{"key":1,"value":5},"time":10,"node":"n1"}
{"index":1,"process":4,"type":"invoke","f":"read","value":{"key":1},"time":11}
{"index":2,"process":3,"type":"ok","f":"write","value":{"key":1,"value":5},"time":12,"extra":[1,2]}
{"index":3,"process":4,"type":"ok","f":"read","value":{"key":1,"value":null},"time":13}
{"index":4,"process":5,"type":"invoke","f":"cas","value":{"key":2,"from":1,"to":2},"time":14}
{"index":5,"process":5,"type":"fail","f":"cas","value":{"key":2,"from":1,"to":2},"time":15,"error":"precondition"}
{"index":6,"process":6,"type":"invoke","f":"write","value":{"key":2,"value":9},"time":16}
{"index":7,"process":6,"type":"info","f":"write","value":{"key":2,"value":9},"time":17}
"#;
    let h = Format::Squall.parse(text).expect("parses");
    assert_eq!(h.ops.len(), 4);
    assert_eq!(
        h.ops[0].input,
        Input::Write {
            value: Value::Int(5)
        }
    );
    assert_eq!(h.ops[0].ret, Some(12));
    assert_eq!(h.ops[1].outcome, OpOutcome::Ok(Value::Nil));
    assert_eq!(h.ops[2].outcome, OpOutcome::Fail);
    assert_eq!(
        (h.ops[3].outcome.clone(), h.ops[3].ret),
        (OpOutcome::Info, None)
    );
    assert_eq!(Format::Squall.default_model(&h), ModelKind::Kv);
}

#[test]
fn squall_propose_selects_write_once() {
    let text = r#"{"index":0,"process":0,"type":"invoke","f":"propose","value":{"key":1,"value":5},"time":1}
{"index":1,"process":0,"type":"ok","f":"propose","value":{"key":1,"value":5,"ballot":{"round":1,"node":"n1"}},"time":2}
"#;
    let h = Format::Squall.parse(text).expect("parses");
    assert_eq!(h.ops[0].outcome, OpOutcome::Ok(Value::Int(5)));
    assert_eq!(Format::Squall.default_model(&h), ModelKind::WriteOnce);
}

#[test]
fn parse_errors_name_the_line_and_problem() {
    let echo =
        r#"{"index":0,"process":0,"type":"invoke","f":"echo","value":{"echo":"hi"},"time":1}"#;
    let err = Format::Squall.parse(echo).unwrap_err();
    assert_eq!(err.line, 1);
    assert!(err.message.contains("`echo`"), "{err}");
    let twice = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":{\"key\":1},\"time\":1}\n\
                 {\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":{\"key\":1},\"time\":2}";
    let err = Format::Squall.parse(twice).unwrap_err();
    assert_eq!(err.line, 2);
    let err = Format::JepsenLog
        .parse("INFO  jepsen.util - 0\t:ok\t:read\t1")
        .unwrap_err();
    assert!(err.message.contains("never invoked"), "{err}");
    let err = Format::Edn
        .parse("{:process 0, :type :invoke, :f :get, :key \"1\"")
        .unwrap_err();
    assert_eq!(err.line, 1);
}

#[test]
fn jepsen_log_outcomes() {
    let text = "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\n\
                INFO  jepsen.util - 1 :invoke :read nil\n\
                INFO  jepsen.util - 0\t:fail\t:cas\t[1 2]\n\
                INFO  jepsen.util - 1 :fail :read :timed-out\n\
                INFO  jepsen.util - 2\t:invoke\t:write\t3\n\
                INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n";
    let h = Format::JepsenLog.parse(text).expect("parses");
    assert_eq!(h.ops[0].outcome, OpOutcome::CompareFailed);
    assert_eq!(h.ops[1].outcome, OpOutcome::Info);
    assert_eq!(
        (h.ops[2].outcome.clone(), h.ops[2].ret),
        (OpOutcome::Info, None)
    );
}

#[test]
fn names_parse_and_errors_list_the_valid_ones() {
    for m in ModelKind::ALL {
        assert_eq!(m.name().parse::<ModelKind>(), Ok(m));
    }
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>(), Ok(f));
    }
    let e = "paxos".parse::<ModelKind>().unwrap_err().to_string();
    assert!(
        e.contains("paxos") && e.contains("cas-register") && e.contains("write-once"),
        "{e}"
    );
    let e = "csv".parse::<Format>().unwrap_err().to_string();
    assert!(e.contains("jepsen-log, edn, squall"), "{e}");
}

#[test]
fn detects_formats() {
    let cases = [
        ("a.log", "", Some(Format::JepsenLog)),
        ("a.jsonl", "", Some(Format::Squall)),
        ("a.txt", "{:process 0, :type :invoke}", Some(Format::Edn)),
        ("h", "{\"process\":1}", Some(Format::Squall)),
        ("h", "hello", None),
    ];
    for (path, text, format) in cases {
        assert_eq!(
            Format::detect(Path::new(path), text),
            format,
            "{path} {text}"
        );
    }
}

#[test]
fn model_errors_name_the_op() {
    let h = Format::Squall
        .parse(
            r#"{"process":0,"type":"invoke","f":"cas","value":{"key":1,"from":1,"to":2},"time":1}"#,
        )
        .expect("parses");
    let err = lincheck::check(&h, ModelKind::Register, &CheckOptions::default()).unwrap_err();
    assert!(err.to_string().contains("cas"), "{err}");
}

#[test]
fn check_files_prints_one_line_per_file_and_the_worst_exit_code() {
    let dir = crate::tempdir("check-files");
    let good = dir.join("good.jsonl");
    let cfg = GenConfig {
        n_ops: 200,
        n_keys: 3,
        seed: 7,
        ..GenConfig::default()
    };
    std::fs::write(&good, lincheck::parse::squall::write(&generate_kv(&cfg))).expect("writes");
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":{\"key\":1},\"time\":1}\n\
         {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":{\"key\":1,\"value\":4},\"time\":2}\n",
    )
    .expect("writes");
    let mut out = Vec::new();
    let opts = CheckOptions {
        verbose: true,
        ..CheckOptions::default()
    };
    let code =
        cmd::check_files(&[good.clone(), bad.clone()], None, None, &opts, &mut out).expect("runs");
    assert_eq!(code, 1);
    let text = String::from_utf8(out).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let first: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(
        (first[0], first[1]),
        (good.to_str().expect("utf-8"), "valid")
    );
    assert!(first[2].parse::<f64>().is_ok());
    assert!(lines[1].starts_with(&format!("{}\tinvalid\t", bad.display())));
    assert!(text.contains("cannot linearize p0 read[1] => 4"), "{text}");
    assert!(text.contains("minimal failing window: 1 ops"), "{text}");
    assert_eq!(crate::check_files_code(&[good]), 0);
    std::fs::remove_dir_all(dir).expect("cleans up");
}
