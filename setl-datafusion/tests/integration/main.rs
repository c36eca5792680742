//! setl-datafusion's integration tests, in one binary: each test binary links DataFusion, so one
//! binary instead of three saves CI half a gigabyte of disk and two links.

mod attribution;
mod csv;
mod frames;
mod shared;
