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
