//! setl-datafusion's integration tests, in one binary: each test binary links DataFusion, so one
//! binary instead of four saves CI most of a gigabyte of disk and three links.

mod csv;
mod frames;
mod shared;
mod tpch;
