//! Examples of setl-rs.
