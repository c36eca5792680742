//! Procedural macros of setl-rs. Use them through `setl_core` (`setl_core::prelude::*`), which
//! re-exports them; generated code names `::setl_core` by absolute path.
//!
//! # Crate layout
//!
//! - `ctxt`: collects every error of one expansion, so users see all of them at once.
//! - `attr`: parsing of `#[factory(..)]` and `#[delivery(..)]` arguments, keys from a table.
//! - `ast`: the typed model of a factory struct, keeping the `syn` nodes for spans.
//! - `expand`: code generation.

use proc_macro::TokenStream;

mod ast;
mod attr;
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
/// payload type alone.
#[proc_macro_attribute]
pub fn factory(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::factory(args.into(), input.into()).into()
}

/// Marks a `Delivery<T>` field of a `#[factory]` struct; `#[factory]` reads and removes it.
///
/// Keys: `producer = Factory`, `id = "delivery id"`, `optional`.
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
