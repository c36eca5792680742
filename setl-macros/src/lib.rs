//! Procedural macros of setl-rs. Use them through `setl_core` (`setl_core::prelude::*`), which
//! re-exports them; generated code names `::setl_core` by absolute path.
//!
//! # Crate layout
//!
//! Both macros go through the same stages, in this order of modules:
//!
//! - `ctxt`: collects every error of one expansion, so users see all of them at once.
//! - `attr`: parsing of `#[factory(..)]`, `#[delivery(..)]` and `#[schema(..)]` arguments, keys
//!   from a table.
//! - `ast`: the typed models of a factory struct and a schema struct, keeping the `syn` nodes
//!   for spans.
//! - `check`: checks that need the whole model.
//! - `expand`: code generation, `factory` and `schema` (used through `setl_arrow`; generated
//!   code names `::setl_arrow::__private`). On an error each still emits the type's trait
//!   impls, so users see that error and not its consequences at every use.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

/// Declares a struct as a setl factory.
///
/// Generates, at compile time: the factory's signature (inputs with payload type, producer, id
/// and optionality; output type, id and allowed consumers), the code that fills its `Delivery`
/// fields, a registration in the global registry, and a check that every declared producer's
/// `Output` is the field's payload type.
///
/// Arguments (all optional): `id = "name"` gives the output a delivery id; `consumers(A, B)`
/// restricts who may consume it; `storage = memory_only | memory_and_disk | disk_only` persists
/// the output at that level (its type must implement `setl_core::Storable`).
///
/// Fields of type `Delivery<T>` are inputs. `#[delivery(producer = X, id = "..", optional)]`
/// refines how they are matched; without it (or with a bare `#[delivery]`) a field matches by
/// payload type alone. `release = process` (or `read`, `write`) empties the slot when that phase
/// returns, so an input the rest of the factory does not need is freed before it finishes.
#[proc_macro_attribute]
pub fn factory(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::factory::factory(args.into(), input.into()).into()
}

/// Marks a `Delivery<T>` field of a `#[factory]` struct; `#[factory]` reads and removes it.
///
/// Keys: `producer = Factory`, `id = "delivery id"`, `optional`, `release = read | process | write`.
#[proc_macro_attribute]
pub fn delivery(_args: TokenStream, input: TokenStream) -> TokenStream {
    let mut out: proc_macro2::TokenStream = syn::Error::new(
        proc_macro2::Span::call_site(),
        "#[delivery] marks a `Delivery<T>` field inside a struct annotated with #[factory]",
    )
    .to_compile_error();
    out.extend(proc_macro2::TokenStream::from(input));
    out.into()
}

/// Derives `setl_arrow::Schema` for a struct with named fields: its Arrow schema, one
/// associated constant per column name (`Orders::CUSTOMER_ID == "customer_id"`), and conversion
/// of rows to a `RecordBatch` and back. Use it as `setl_arrow::Schema`.
///
/// Field types: integers, `f32`, `f64`, `bool`, `String`, `i128` decimals, chrono dates, times
/// and timestamps, `Option<T>` (nullable), `Vec<T>` (list) and other `#[derive(Schema)]` structs.
/// Field attributes: `#[schema(rename = "column")]`, `#[schema(decimal(precision, scale))]`.
#[proc_macro_derive(Schema, attributes(schema))]
pub fn derive_schema(input: TokenStream) -> TokenStream {
    expand::schema::derive(input.into()).into()
}
