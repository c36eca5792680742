//! Parsing of `#[factory(..)]`, `#[delivery(..)]` and `#[schema(..)]` arguments.
//!
//! Allowed keys are listed per attribute; an unknown key or a repeated one is an error spanned on
//! that key, and parsing goes on so that every mistake is reported at once.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Ident, LitInt, LitStr, Path};

use crate::ctxt::Ctxt;

/// Keys of `#[factory(..)]`.
const FACTORY_KEYS: &str = "`id = \"..\"`, `consumers(A, B)` or `storage = memory_only | memory_and_disk | disk_only`";
/// Values of `storage = ..`, as written, with the `StorageLevel` variant each stands for.
pub(crate) const STORAGE_LEVELS: [(&str, &str); 3] =
    [("memory_only", "MemoryOnly"), ("memory_and_disk", "MemoryAndDisk"), ("disk_only", "DiskOnly")];
/// Keys of `#[delivery(..)]`.
const DELIVERY_KEYS: &str = "`producer = Factory`, `id = \"..\"`, `optional` or `release = read | process | write`";
/// Values of `release = ..`: the phase after which the runtime empties the slot, as written,
/// with the `Phase` variant each stands for.
pub(crate) const RELEASE_PHASES: [(&str, &str); 3] = [("read", "Read"), ("process", "Process"), ("write", "Write")];

/// One attribute value, remembering the key's tokens for a duplicate error.
pub(crate) struct Attr<T> {
    name: &'static str,
    value: Option<T>,
}

impl<T> Attr<T> {
    fn none(name: &'static str) -> Self {
        Attr { name, value: None }
    }

    fn set(&mut self, cx: &mut Ctxt, key: &Path, value: T) {
        if self.value.is_some() {
            cx.error_spanned_by(key, format!("duplicate `{}` key", self.name));
        } else {
            self.value = Some(value);
        }
    }

    pub(crate) fn get(self) -> Option<T> {
        self.value
    }
}

/// `#[factory(id = "..", consumers(A, B), storage = ..)]`.
pub(crate) struct FactoryArgs {
    pub(crate) id: Option<LitStr>,
    pub(crate) consumers: Vec<Path>,
    pub(crate) storage: Option<syn::Ident>,
}

pub(crate) fn parse_factory_args(cx: &mut Ctxt, args: proc_macro2::TokenStream) -> FactoryArgs {
    let mut id = Attr::none("id");
    let mut consumers = Attr::none("consumers");
    let mut storage = Attr::none("storage");
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("storage") {
            let value: syn::Ident = meta.value()?.parse()?;
            if STORAGE_LEVELS.iter().any(|(name, _)| value == name) {
                storage.set(cx, &meta.path, value);
            } else {
                cx.error_spanned_by(
                    &value,
                    format!(
                        "unknown storage level `{value}`; expected `memory_only`, `memory_and_disk` or `disk_only`"
                    ),
                );
            }
        } else if meta.path.is_ident("id") {
            let value: LitStr = meta.value()?.parse()?;
            id.set(cx, &meta.path, value);
        } else if meta.path.is_ident("consumers") {
            let mut list = Vec::new();
            meta.parse_nested_meta(|consumer| {
                list.push(consumer.path.clone());
                Ok(())
            })?;
            consumers.set(cx, &meta.path, list);
        } else {
            unknown(cx, &meta, "#[factory]", FACTORY_KEYS)?;
        }
        Ok(())
    });
    if let Err(error) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(error);
    }
    FactoryArgs { id: id.get(), consumers: consumers.get().unwrap_or_default(), storage: storage.get() }
}

/// `#[delivery(producer = X, id = "..", optional, release = process)]`.
#[derive(Default)]
pub(crate) struct DeliveryArgs {
    pub(crate) producer: Option<Path>,
    pub(crate) id: Option<LitStr>,
    pub(crate) optional: bool,
    /// `release = ..`: the phase after which the input is released, already checked.
    pub(crate) release: Option<Ident>,
}

pub(crate) fn parse_delivery_args(cx: &mut Ctxt, attr: &syn::Attribute) -> DeliveryArgs {
    match &attr.meta {
        syn::Meta::Path(_) => return DeliveryArgs::default(),
        syn::Meta::NameValue(name_value) => {
            cx.error_spanned_by(name_value, format!("#[delivery] takes a list of keys: #[delivery({DELIVERY_KEYS})]"));
            return DeliveryArgs::default();
        }
        syn::Meta::List(_) => {}
    }
    let mut producer = Attr::none("producer");
    let mut id = Attr::none("id");
    let mut optional = Attr::none("optional");
    let mut release = Attr::none("release");
    let result = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("producer") {
            let value: Path = meta.value()?.parse()?;
            producer.set(cx, &meta.path, value);
        } else if meta.path.is_ident("id") {
            let value: LitStr = meta.value()?.parse()?;
            id.set(cx, &meta.path, value);
        } else if meta.path.is_ident("optional") {
            optional.set(cx, &meta.path, ());
        } else if meta.path.is_ident("release") {
            let phase: Ident = meta.value()?.parse()?;
            if RELEASE_PHASES.iter().any(|(name, _)| phase == name) {
                release.set(cx, &meta.path, phase);
            } else {
                cx.error_spanned_by(
                    &phase,
                    format!(
                        "unknown phase `{phase}` for `release`; expected `read`, `process` or `write` (the \
                         input is released when that phase returns)"
                    ),
                );
            }
        } else {
            unknown(cx, &meta, "#[delivery]", DELIVERY_KEYS)?;
        }
        Ok(())
    });
    if let Err(error) = result {
        cx.syn_error(error);
    }
    DeliveryArgs { producer: producer.get(), id: id.get(), optional: optional.get().is_some(), release: release.get() }
}

/// Keys of `#[schema(..)]` on a field.
const SCHEMA_KEYS: &str = "`rename = \"..\"` or `decimal(precision, scale)`";

/// `#[schema(rename = "..", decimal(precision, scale))]` on a field of a `#[derive(Schema)]`
/// struct; the values are checked against the whole struct in `check`.
pub(crate) struct SchemaFieldArgs {
    pub(crate) rename: Option<LitStr>,
    /// Precision, scale, and the key's span for the type check.
    pub(crate) decimal: Option<(LitInt, LitInt, Span)>,
}

pub(crate) fn parse_schema_field_args(cx: &mut Ctxt, attrs: &[syn::Attribute]) -> SchemaFieldArgs {
    let mut rename = Attr::none("rename");
    let mut decimal = Attr::none("decimal");
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("schema")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let value: LitStr = meta.value()?.parse()?;
                if value.value().is_empty() {
                    cx.error_spanned_by(&value, "a column name cannot be empty");
                } else {
                    rename.set(cx, &meta.path, value);
                }
            } else if meta.path.is_ident("decimal") {
                let content;
                syn::parenthesized!(content in meta.input);
                let precision: LitInt = content.parse()?;
                content.parse::<syn::Token![,]>()?;
                let scale: LitInt = content.parse()?;
                decimal.set(cx, &meta.path, (precision, scale, meta.path.span()));
            } else {
                unknown(cx, &meta, "#[schema]", SCHEMA_KEYS)?;
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.syn_error(error);
        }
    }
    SchemaFieldArgs { rename: rename.get(), decimal: decimal.get() }
}

/// Reports an unknown key and skips its value, so parsing can go on.
fn unknown(cx: &mut Ctxt, meta: &ParseNestedMeta<'_>, attribute: &str, keys: &str) -> syn::Result<()> {
    let name = meta.path.get_ident().map_or_else(|| "?".to_owned(), ToString::to_string);
    cx.error_spanned_by(&meta.path, format!("unknown key `{name}` in {attribute}; expected {keys}"));
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|nested| {
            let _ = nested.path;
            Ok(())
        })?;
    }
    Ok(())
}
