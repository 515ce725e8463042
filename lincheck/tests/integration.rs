//! The lincheck integration tests: one binary, one module per concern.

mod integration {
    mod budget;
    mod corpus;
    mod exhaustive;
    mod formats;
    mod generated;
    mod regressions;
    mod testdata;
}

use std::path::PathBuf;

/// A fresh scratch directory for the test named `what`.
fn tempdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lincheck-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creates");
    dir
}

/// `check_files` over `files`, default options, its lines dropped: the exit code.
fn check_files_code(files: &[PathBuf]) -> i32 {
    let opts = lincheck::CheckOptions::default();
    lincheck::cmd::check_files(files, None, None, &opts, &mut Vec::new()).expect("runs")
}
