//! Regressions: each test is named after the bug it catches.

use std::path::PathBuf;

use lincheck::{check, cmd, CheckOptions, Format, History, Input, ModelKind, Op, OpOutcome, Value};

fn op(process: u64, input: Input, outcome: OpOutcome, call: u64, ret: Option<u64>) -> Op {
    Op {
        process,
        key: Value::Nil,
        input,
        outcome,
        call,
        ret,
    }
}

fn verdict(h: &History, model: ModelKind) -> &'static str {
    check(h, model, &CheckOptions::default())
        .expect("fits the model")
        .verdict
        .name()
}

#[test]
fn a_completion_at_u64_max_does_not_make_an_op_optional() {
    // The read of 5 must be linearized and nothing wrote 5; it returned at the largest
    // time there is, which once equalled the internal "never returned" marker.
    let h = History {
        ops: vec![
            op(
                0,
                Input::Write {
                    value: Value::Int(1),
                },
                OpOutcome::Ok(Value::Nil),
                0,
                Some(1),
            ),
            op(
                1,
                Input::Read,
                OpOutcome::Ok(Value::Int(5)),
                2,
                Some(u64::MAX),
            ),
        ],
    };
    for model in [ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv] {
        assert_eq!(verdict(&h, model), "invalid", "{model}");
    }
    // And a real-time order ending at u64::MAX still counts.
    let h = History {
        ops: vec![
            op(
                0,
                Input::Write {
                    value: Value::Int(1),
                },
                OpOutcome::Ok(Value::Nil),
                u64::MAX - 2,
                Some(u64::MAX - 1),
            ),
            op(
                1,
                Input::Read,
                OpOutcome::Ok(Value::Nil),
                u64::MAX,
                Some(u64::MAX),
            ),
        ],
    };
    assert_eq!(verdict(&h, ModelKind::Register), "invalid");
}

#[test]
fn edn_completion_with_another_f_is_an_error_naming_the_line() {
    let text = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n\
                {:process 0, :type :ok, :f :put, :key \"1\", :value \"zzz\"}\n";
    let err = Format::Edn.parse(text).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    assert!(err.message.contains(":put"), "{err}");
    // Aliases are the same function.
    let text = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n\
                {:process 0, :type :ok, :f :read, :key \"1\", :value \"\"}\n";
    assert!(Format::Edn.parse(text).is_ok());
}

#[test]
fn jsonl_completion_before_its_invoke_is_an_error_naming_the_line() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":{\"key\":1},\"time\":10}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":{\"key\":1,\"value\":null},\"time\":9}\n";
    let err = Format::Squall.parse(text).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    assert!(err.message.contains("before its invoke"), "{err}");
}

fn jsonl(rows: &[(u64, &str, &str, &str, u64)]) -> String {
    rows.iter()
        .map(|(p, ty, f, value, time)| {
            format!(
                "{{\"process\":{p},\"type\":\"{ty}\",\"f\":\"{f}\",\"value\":{value},\"time\":{time}}}\n"
            )
        })
        .collect()
}

#[test]
fn equal_timestamps_keep_file_order_in_squall_histories() {
    // Lockstep stamps: the write returns at 10 and the read is invoked at 10, on the
    // next line. The read must see the write.
    let other_process = jsonl(&[
        (0, "invoke", "write", r#"{"key":1,"value":1}"#, 5),
        (0, "ok", "write", r#"{"key":1,"value":1}"#, 10),
        (1, "invoke", "read", r#"{"key":1}"#, 10),
        (1, "ok", "read", r#"{"key":1,"value":null}"#, 12),
    ]);
    let h = Format::Squall.parse(&other_process).expect("parses");
    assert_eq!(verdict(&h, ModelKind::Kv), "invalid");
    // A process's own order too, even when every event shares one instant.
    let same_process = jsonl(&[
        (0, "invoke", "write", r#"{"key":1,"value":1}"#, 7),
        (0, "ok", "write", r#"{"key":1,"value":1}"#, 7),
        (0, "invoke", "read", r#"{"key":1}"#, 7),
        (0, "ok", "read", r#"{"key":1,"value":null}"#, 7),
    ]);
    let h = Format::Squall.parse(&same_process).expect("parses");
    assert_eq!(verdict(&h, ModelKind::Kv), "invalid");
    // The read invoked before the write returned (earlier line, same time) may still
    // precede it.
    let concurrent = jsonl(&[
        (0, "invoke", "write", r#"{"key":1,"value":1}"#, 5),
        (1, "invoke", "read", r#"{"key":1}"#, 10),
        (0, "ok", "write", r#"{"key":1,"value":1}"#, 10),
        (1, "ok", "read", r#"{"key":1,"value":null}"#, 12),
    ]);
    let h = Format::Squall.parse(&concurrent).expect("parses");
    assert_eq!(verdict(&h, ModelKind::Kv), "valid");
}

#[test]
fn single_register_models_refuse_a_multi_key_history() {
    let text = jsonl(&[
        (0, "invoke", "write", r#"{"key":1,"value":1}"#, 1),
        (0, "ok", "write", r#"{"key":1,"value":1}"#, 2),
        (1, "invoke", "read", r#"{"key":2}"#, 3),
        (1, "ok", "read", r#"{"key":2,"value":null}"#, 4),
    ]);
    let h = Format::Squall.parse(&text).expect("parses");
    for model in [ModelKind::Register, ModelKind::CasRegister] {
        let err = check(&h, model, &CheckOptions::default()).unwrap_err();
        assert!(err.to_string().contains("kv model"), "{err}");
    }
    assert_eq!(verdict(&h, ModelKind::Kv), "valid");
}

/// A decided propose, then a null read: local (left out) or quorum (judged).
fn decided_then_null_read(quorum: bool) -> String {
    let read = if quorum {
        r#"{"key":3,"quorum":true}"#
    } else {
        r#"{"key":3}"#
    };
    jsonl(&[
        (0, "invoke", "propose", r#"{"key":3,"value":7}"#, 1),
        (0, "ok", "propose", r#"{"key":3,"value":7}"#, 2),
        (1, "invoke", "read", read, 3),
        (1, "ok", "read", r#"{"key":3,"value":null}"#, 4),
    ])
}

#[test]
fn write_once_null_reads_are_judged_only_when_quorum() {
    for (quorum, expected) in [(false, "valid"), (true, "invalid")] {
        let text = decided_then_null_read(quorum);
        let prepared = lincheck::parse::squall::write_once(&text).expect("parses");
        assert_eq!(prepared.local_null_reads, usize::from(!quorum));
        assert_eq!(
            verdict(&prepared.history, ModelKind::WriteOnce),
            expected,
            "quorum {quorum}"
        );
        // `squall check` on the file says the same.
        let dir = crate::tempdir("write-once");
        let path = dir.join("history.jsonl");
        std::fs::write(&path, &text).expect("writes");
        let got = cmd::check_file(&path, None, None, &CheckOptions::default()).expect("checks");
        assert_eq!(got.model, ModelKind::WriteOnce);
        assert_eq!(got.outcome.verdict.name(), expected, "quorum {quorum}");
        std::fs::remove_dir_all(dir).expect("cleans up");
    }
}

#[test]
fn one_unreadable_file_does_not_stop_a_batch() {
    let dir = crate::tempdir("batch");
    let valid = dir.join("valid.jsonl");
    std::fs::write(
        &valid,
        jsonl(&[
            (0, "invoke", "write", r#"{"key":1,"value":1}"#, 1),
            (0, "ok", "write", r#"{"key":1,"value":1}"#, 2),
        ]),
    )
    .expect("writes");
    let garbled = dir.join("garbled.jsonl");
    std::fs::write(&garbled, "{\"process\":0,\n").expect("writes");
    let missing = dir.join("missing.jsonl");
    let invalid = dir.join("invalid.jsonl");
    std::fs::write(
        &invalid,
        jsonl(&[
            (0, "invoke", "read", r#"{"key":1}"#, 1),
            (0, "ok", "read", r#"{"key":1,"value":4}"#, 2),
        ]),
    )
    .expect("writes");
    let files = [
        valid.clone(),
        garbled.clone(),
        missing.clone(),
        invalid.clone(),
    ];
    let mut out = Vec::new();
    let code =
        cmd::check_files(&files, None, None, &CheckOptions::default(), &mut out).expect("runs");
    assert_eq!(code, cmd::EXIT_ERROR);
    let text = String::from_utf8(out).expect("utf-8");
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let words: Vec<(&str, &str)> = lines.iter().map(|l| (l[0], l[1])).collect();
    let name = |p: &PathBuf| p.to_str().expect("utf-8").to_string();
    assert_eq!(
        words,
        [
            (name(&valid).as_str(), "valid"),
            (name(&garbled).as_str(), "error"),
            (name(&missing).as_str(), "error"),
            (name(&invalid).as_str(), "invalid"),
        ],
        "{text}"
    );
    assert!(lines[1][2].contains("line 1"), "{text}");
    // Without the bad files the worst outcome is the invalid one.
    assert_eq!(crate::check_files_code(&[valid, invalid]), 1);
    std::fs::remove_dir_all(dir).expect("cleans up");
}

/// `n` crashed appends nobody reads and a crashed put of "p", then three concurrent
/// appends and a get of "p" followed by them (or, with `bad`, a get no order explains).
fn crashed_put_ahead_of_appends(n: u64, bad: bool) -> History {
    let s = |v: &str| Value::Str(v.to_string());
    let append = |v: &str| Input::Append { value: s(v) };
    let mut ops: Vec<Op> = (0..n)
        .map(|i| op(i, append(&format!("z{i};")), OpOutcome::Info, i, None))
        .collect();
    let t = n;
    ops.push(op(
        n,
        Input::Write { value: s("p") },
        OpOutcome::Info,
        t,
        None,
    ));
    for (i, v) in ["a;", "b;", "c;"].into_iter().enumerate() {
        let i = i as u64;
        ops.push(op(
            n + 1 + i,
            append(v),
            OpOutcome::Ok(Value::Nil),
            t + 1 + i,
            Some(t + 10),
        ));
    }
    let read = if bad { "pa;c;a;" } else { "pb;a;c;" };
    ops.push(op(
        n + 4,
        Input::Read,
        OpOutcome::Ok(s(read)),
        t + 11,
        Some(t + 12),
    ));
    History { ops }
}

#[test]
fn unread_crashed_appends_ahead_of_a_crashed_put_are_one_state() {
    // Every order of the crashed appends and the three required ones used to be its
    // own string (2^n orders and subsets) before the put that overwrites them all.
    let opts = CheckOptions {
        threads: 1,
        key_states_max: 20_000,
        ..CheckOptions::default()
    };
    let h = crashed_put_ahead_of_appends(16, false);
    let o = check(&h, ModelKind::KvStrings, &opts).expect("fits the model");
    assert_eq!(o.verdict.name(), "valid", "{:?}", o.stats);
    assert!(o.stats.states < 1_000, "{:?}", o.stats);
    let h = crashed_put_ahead_of_appends(16, true);
    let o = check(&h, ModelKind::KvStrings, &opts).expect("fits the model");
    assert_eq!(o.verdict.name(), "invalid", "{:?}", o.stats);
}
