//! setl-arrow's integration tests, in one binary: arrow and parquet are linked once, not nine
//! times (CI's disk and link time).

mod cache;
mod common;
mod connectors;
mod errors;
mod fault_injection;
mod pipeline;
mod properties;
mod reader_errors;
mod schema_derive;
mod writes;
