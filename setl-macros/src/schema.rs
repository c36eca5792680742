//! `#[derive(Schema)]`: an Arrow schema, column-name constants and row conversion for a plain
//! struct with named fields.
//!
//! Stages as in the factory macro: parse `#[schema(..)]` attributes (keys from a table, every
//! error collected), build a small model of the struct, generate code that names the runtime by
//! absolute path (`::setl_arrow::__private`) inside `const _: () = { .. };`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitInt, LitStr, Type};

use crate::ctxt::Ctxt;

/// Keys of `#[schema(..)]` on a field.
const FIELD_KEYS: &str = "`rename = \"..\"` or `decimal(precision, scale)`";

/// One field of the struct, with its settings.
struct SchemaField<'a> {
    ident: &'a syn::Ident,
    ty: &'a Type,
    /// The column name: `rename`, or the field's name.
    column: String,
    /// `decimal(precision, scale)` and the attribute's span.
    decimal: Option<(LitInt, LitInt, Span)>,
}

pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let mut cx = Ctxt::default();
    let fields = parse(&mut cx, &input);
    match cx.check() {
        Ok(()) => expand(&input, &fields),
        // The traits are implemented anyway, so that users see this error and not "not a dataset
        // schema" at every use of the type (as `#[factory]` does).
        Err(error) => {
            let mut out = error.to_compile_error();
            if input.generics.params.is_empty() {
                out.extend(fallback(&input.ident));
            }
            out
        }
    }
}

/// Impls that are never called: the crate fails to compile anyway.
fn fallback(name: &syn::Ident) -> TokenStream {
    let p = quote!(::setl_arrow::__private);
    quote! {
        const _: () = {
            impl #p::Schema for #name {
                fn arrow_schema() -> #p::SchemaRef {
                    ::core::unreachable!("#[derive(Schema)] failed")
                }
            }

            impl #p::ArrowField for #name {
                fn data_type(_: &#p::FieldOptions) -> #p::DataType {
                    ::core::unreachable!("#[derive(Schema)] failed")
                }

                fn to_array(
                    _: &[#p::Option<&Self>],
                    _: &#p::FieldOptions,
                ) -> #p::Result<#p::ArrayRef, #p::ArrowError> {
                    ::core::unreachable!("#[derive(Schema)] failed")
                }

                fn from_array(
                    _: &dyn #p::Array,
                    _: &#p::FieldOptions,
                ) -> #p::Result<#p::Vec<#p::Option<Self>>, #p::FieldError> {
                    ::core::unreachable!("#[derive(Schema)] failed")
                }
            }

            impl #p::Row for #name {
                const COLUMNS: &'static [&'static str] = &[];
            }
        };
    }
}

fn parse<'a>(cx: &mut Ctxt, input: &'a DeriveInput) -> Vec<SchemaField<'a>> {
    for attr in &input.attrs {
        if attr.path().is_ident("schema") {
            cx.error_spanned_by(attr, "#[schema(..)] goes on fields; the struct itself takes no options");
        }
    }
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "#[derive(Schema)] does not support generic structs: a schema is one fixed set of columns",
        );
    }
    let named = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named,
            other => {
                cx.error_spanned_by(
                    other,
                    "#[derive(Schema)] needs a struct with named fields: the names are the column names",
                );
                return Vec::new();
            }
        },
        Data::Enum(data) => {
            cx.error_spanned_by(data.enum_token, "#[derive(Schema)] needs a struct with named fields, not an enum");
            return Vec::new();
        }
        Data::Union(data) => {
            cx.error_spanned_by(data.union_token, "#[derive(Schema)] needs a struct with named fields, not a union");
            return Vec::new();
        }
    };
    let mut fields = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for field in &named.named {
        // Named fields always have an ident.
        let Some(ident) = field.ident.as_ref() else { continue };
        let mut rename: Option<LitStr> = None;
        let mut decimal: Option<(LitInt, LitInt, Span)> = None;
        for attr in &field.attrs {
            if !attr.path().is_ident("schema") {
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let value: LitStr = meta.value()?.parse()?;
                    if rename.is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `rename` key");
                    } else if value.value().is_empty() {
                        cx.error_spanned_by(&value, "a column name cannot be empty");
                    } else {
                        rename = Some(value);
                    }
                } else if meta.path.is_ident("decimal") {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let precision: LitInt = content.parse()?;
                    content.parse::<syn::Token![,]>()?;
                    let scale: LitInt = content.parse()?;
                    check_decimal(cx, &precision, &scale);
                    if decimal.is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `decimal` key");
                    } else {
                        decimal = Some((precision, scale, meta.path.span()));
                    }
                } else {
                    cx.error_spanned_by(&meta.path, format!("unknown #[schema] key; expected {FIELD_KEYS}"));
                    // Skip the key's value so that parsing goes on with the next key.
                    if meta.input.peek(syn::Token![=]) {
                        meta.value()?.parse::<syn::Expr>()?;
                    } else if meta.input.peek(syn::token::Paren) {
                        let _skipped;
                        syn::parenthesized!(_skipped in meta.input);
                    }
                }
                Ok(())
            });
            if let Err(error) = result {
                cx.syn_error(error);
            }
        }
        let column = match &rename {
            Some(name) => name.value(),
            None => ident.to_string().trim_start_matches("r#").to_owned(),
        };
        if let Some(previous) = seen.insert(column.clone(), ident) {
            cx.error_spanned_by(ident, format!("column `{column}` is already the name of field `{previous}`"));
        }
        fields.push(SchemaField { ident, ty: &field.ty, column, decimal });
    }
    fields
}

fn check_decimal(cx: &mut Ctxt, precision: &LitInt, scale: &LitInt) {
    match precision.base10_parse::<u8>() {
        Ok(p) if (1..=38).contains(&p) => {
            if let Ok(s) = scale.base10_parse::<i8>() {
                if i16::from(s) > i16::from(p) {
                    cx.error_spanned_by(scale, "the scale cannot exceed the precision");
                }
            } else {
                cx.error_spanned_by(scale, "the scale is an integer from -128 to 127");
            }
        }
        _ => cx.error_spanned_by(precision, "the precision of a Decimal128 is an integer from 1 to 38"),
    }
}

fn expand(input: &DeriveInput, fields: &[SchemaField<'_>]) -> TokenStream {
    let name = &input.ident;
    let p = quote!(::setl_arrow::__private);
    let columns: Vec<&String> = fields.iter().map(|f| &f.column).collect();

    let constants = fields.iter().map(|f| {
        let constant =
            format_ident!("{}", f.ident.to_string().trim_start_matches("r#").to_uppercase(), span = f.ident.span());
        let doc = format!("The column name of field `{}`: `{}`.", f.ident, f.column);
        let column = &f.column;
        quote! {
            #[doc = #doc]
            pub const #constant: &'static str = #column;
        }
    });

    let options: Vec<TokenStream> = fields
        .iter()
        .map(|f| match &f.decimal {
            Some((precision, scale, _)) => quote!(&#p::FieldOptions::NONE.with_decimal(#precision, #scale)),
            None => quote!(&#p::FieldOptions::NONE),
        })
        .collect();

    // Every use of a field's type is spanned on it, so an unsupported type is reported there.
    let field_defs = fields.iter().zip(&options).map(|(f, opts)| {
        let ty = f.ty;
        let column = &f.column;
        quote_spanned!(ty.span()=> (#p::codec::<#ty>().field)(#column, #opts))
    });
    let checks = fields.iter().map(|f| {
        let ty = f.ty;
        f.decimal.as_ref().map(|(_, _, span)| quote_spanned!(*span=> #p::assert_decimal::<#ty>();))
    });
    let to_children = fields.iter().zip(&options).map(|(f, opts)| {
        let ty = f.ty;
        let ident = f.ident;
        quote_spanned!(ty.span()=> (#p::codec::<#ty>().to_array)(&#p::project(values, |row: &#name| &row.#ident), #opts)?)
    });
    let readers: Vec<syn::Ident> = (0..fields.len()).map(|i| format_ident!("__column{}", i)).collect();
    let read_columns = fields.iter().zip(&options).zip(&readers).map(|((f, opts), reader)| {
        let ty = f.ty;
        let column = &f.column;
        quote_spanned! {ty.span()=>
            let mut #reader = (#p::codec::<#ty>().from_array)(&**#p::child(array, #column)?, #opts)
                .map_err(|e| e.in_field(#column))?
                .into_iter();
        }
    });
    let build = fields.iter().zip(&readers).map(|(f, reader)| {
        let ident = f.ident;
        let column = &f.column;
        quote!(#ident: #p::required(#reader.next(), #column, row)?)
    });

    quote! {
        impl #name {
            #(#constants)*
        }

        const _: () = {
            fn __fields() -> #p::Fields {
                #p::Fields::from(#p::Vec::<#p::Field>::from([#(#field_defs),*]))
            }

            #[allow(dead_code, reason = "never called: it only makes the compiler check each field's type")]
            fn __checks() {
                #(#checks)*
            }

            impl #p::Schema for #name {
                fn arrow_schema() -> #p::SchemaRef {
                    static SCHEMA: #p::OnceLock<#p::SchemaRef> = #p::OnceLock::new();
                    SCHEMA.get_or_init(|| #p::Arc::new(#p::ArrowSchema::new(__fields()))).clone()
                }
            }

            impl #p::ArrowField for #name {
                fn data_type(_: &#p::FieldOptions) -> #p::DataType {
                    #p::DataType::Struct(__fields())
                }

                fn to_array(
                    values: &[#p::Option<&Self>],
                    _: &#p::FieldOptions,
                ) -> #p::Result<#p::ArrayRef, #p::ArrowError> {
                    let children = #p::Vec::<#p::ArrayRef>::from([#(#to_children),*]);
                    #p::struct_array(__fields(), children, values)
                }

                fn from_array(
                    array: &dyn #p::Array,
                    _: &#p::FieldOptions,
                ) -> #p::Result<#p::Vec<#p::Option<Self>>, #p::FieldError> {
                    let array = #p::as_struct(array, &__fields())?;
                    #(#read_columns)*
                    let len = #p::Array::len(array);
                    let mut out = #p::Vec::with_capacity(len);
                    for row in 0..len {
                        if #p::Array::is_null(array, row) {
                            #(let _ = #readers.next();)*
                            out.push(#p::Option::None);
                            continue;
                        }
                        out.push(#p::Option::Some(#name { #(#build),* }));
                    }
                    #p::Result::Ok(out)
                }
            }

            impl #p::Row for #name {
                const COLUMNS: &'static [&'static str] = &[#(#columns),*];
            }
        };
    }
}
