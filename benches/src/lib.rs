//! Benches of setl-rs.
