//! Code generation, one file per macro.

pub(crate) mod factory;
pub(crate) mod schema;
