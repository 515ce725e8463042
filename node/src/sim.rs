//! In-process simulated network for algorithm unit tests (no sockets, no clocks).
