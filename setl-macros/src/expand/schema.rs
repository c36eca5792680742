//! Code generation for `#[derive(Schema)]`: an Arrow schema, column-name constants and row
//! conversion, naming the runtime by absolute path (`::setl_arrow::__private`) inside
//! `const _: () = { .. };`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::DeriveInput;

use crate::ast::{SchemaField, SchemaStruct};
use crate::check;
use crate::ctxt::Ctxt;

pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let mut cx = Ctxt::default();
    let model = SchemaStruct::from_input(&mut cx, &input);
    check::schema(&mut cx, &model);
    match cx.check() {
        Ok(()) => expand(&model),
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

fn expand(model: &SchemaStruct<'_>) -> TokenStream {
    let name = model.ident;
    let fields: &[SchemaField<'_>] = &model.fields;
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
