//! Code generation for `#[factory]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::FactoryStruct;
use crate::attr;
use crate::ctxt::Ctxt;

pub(crate) fn factory(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: syn::Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => return error.to_compile_error(),
    };
    let mut item = match item {
        syn::Item::Struct(item) => item,
        syn::Item::Enum(item) => {
            return with_error(
                &item,
                syn::Error::new(
                    item.enum_token.span,
                    "#[factory] works on structs with named fields, not enums; a factory is one step whose \
                     inputs are its `Delivery` fields",
                ),
            )
        }
        other => {
            return with_error(&other, syn::Error::new_spanned(&other, "#[factory] works on structs with named fields"))
        }
    };
    let mut cx = Ctxt::default();
    let args = attr::parse_factory_args(&mut cx, args);
    let model = FactoryStruct::from_item(&mut cx, &mut item, args);
    match cx.check() {
        Ok(()) => {
            let generated = generate(&model);
            quote! { #item #generated }
        }
        // Emit the struct and a placeholder wiring anyway, so that users see this error and not
        // more about a missing type or a missing `FactoryWiring` impl (thiserror's fallback).
        Err(error) => {
            let mut out = with_error(&item, error);
            if item.generics.params.is_empty() {
                out.extend(fallback(&item.ident));
            }
            out
        }
    }
}

/// A `FactoryWiring` impl that is never called: the crate fails to compile anyway.
fn fallback(ident: &syn::Ident) -> TokenStream {
    let name = ident.to_string();
    quote! {
        const _: () = {
            use ::setl_core::__private as __setl;
            impl __setl::FactoryWiring for #ident {
                const NAME: &'static str = #name;
                fn signature() -> &'static __setl::Signature {
                    ::core::unreachable!()
                }
                fn __inject(
                    &mut self,
                    _: usize,
                    _: __setl::Payload,
                ) -> ::core::result::Result<(), __setl::InjectError> {
                    ::core::unreachable!()
                }
                fn __release(&mut self, _: usize, _: __setl::Phase) {
                    ::core::unreachable!()
                }
            }
        };
    }
}

/// The variant an attribute value stands for, in a table of `(written, variant)`.
fn variant_of(table: &[(&str, &str)], value: &syn::Ident) -> syn::Ident {
    let variant = table
        .iter()
        .find(|(name, _)| value == name)
        .map(|(_, variant)| *variant)
        .expect("the value was checked when parsed");
    syn::Ident::new(variant, value.span())
}

fn with_error(item: &impl quote::ToTokens, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote! { #item #error }
}

fn generate(model: &FactoryStruct) -> TokenStream {
    let ident = &model.ident;
    let name = ident.to_string();
    let output_id = model.output_id.as_ref().map_or_else(|| quote!(""), |id| quote!(#id));
    let consumers = model.consumers.iter().map(|consumer| {
        quote_spanned! {consumer.span()=> __setl::FactoryRef::of::<#consumer>() }
    });
    let inputs = model.inputs.iter().map(|input| {
        let field = input.field.to_string();
        let payload = &input.payload;
        let producer = match &input.producer {
            Some(producer) => quote_spanned! {producer.span()=>
                ::core::option::Option::Some(__setl::FactoryRef::of::<#producer>())
            },
            None => quote!(::core::option::Option::None),
        };
        let id = input.id.as_ref().map_or_else(|| quote!(""), |id| quote!(#id));
        let optional = input.optional;
        let release = match &input.release {
            Some(phase) => {
                let variant = variant_of(&attr::RELEASE_PHASES, phase);
                quote! { ::core::option::Option::Some(__setl::Phase::#variant) }
            }
            None => quote!(::core::option::Option::None),
        };
        quote! { __setl::InputDecl::__new::<#payload>(#field, #producer, #id, #optional, #release) }
    });
    let inject_arms = model.inputs.iter().enumerate().map(|(slot, input)| {
        let field = &input.field;
        let field_name = field.to_string();
        quote! { #slot => self.#field.__fill(#field_name, value), }
    });
    let release_arms =
        model.inputs.iter().enumerate().filter(|(_, input)| input.release.is_some()).map(|(slot, input)| {
            let field = &input.field;
            quote! { #slot => self.#field.__release(after), }
        });
    let storage = match &model.storage {
        Some(level) => {
            let variant = variant_of(&attr::STORAGE_LEVELS, level);
            quote! { ::core::option::Option::Some(__setl::StorageLevel::#variant) }
        }
        None => quote!(::core::option::Option::None),
    };
    let storage_check = model.storage.as_ref().map(|level| {
        quote_spanned! {level.span()=>
            let _ = __setl::assert_storable::<<#ident as __setl::Factory>::Output>;
        }
    });
    let producer_checks = model.inputs.iter().filter_map(|input| {
        let producer = input.producer.as_ref()?;
        let payload = &input.payload;
        Some(quote_spanned! {producer.span()=>
            let _ = __setl::assert_producer_output::<#producer, #payload>;
        })
    });
    quote! {
        #[doc(hidden)]
        #[allow(unused_qualifications, reason = "generated paths are absolute, so that names the user imports cannot change what they mean")]
        const _: () = {
            use ::setl_core::__private as __setl;

            #[automatically_derived]
            impl __setl::FactoryWiring for #ident {
                const NAME: &'static str = #name;

                fn signature() -> &'static __setl::Signature {
                    static SIGNATURE: __setl::OnceLock<__setl::Signature> = __setl::OnceLock::new();
                    SIGNATURE.get_or_init(|| {
                        __setl::Signature::__new::<#ident>(
                            ::core::module_path!(),
                            #output_id,
                            <__setl::Vec<__setl::FactoryRef>>::from([#(#consumers),*]),
                            <__setl::Vec<__setl::InputDecl>>::from([#(#inputs),*]),
                        )
                        .__with_store(__setl_store_ops(), #storage)
                    })
                }

                fn __inject(
                    &mut self,
                    slot: usize,
                    value: __setl::Payload,
                ) -> ::core::result::Result<(), __setl::InjectError> {
                    match slot {
                        #(#inject_arms)*
                        _ => ::core::result::Result::Err(__setl::InjectError { field: "<no such slot>" }),
                    }
                }

                fn __release(&mut self, slot: usize, after: __setl::Phase) {
                    match slot {
                        #(#release_arms)*
                        _ => {}
                    }
                }
            }

            fn __setl_store_ops() -> ::core::option::Option<__setl::StoreOps> {
                #[allow(unused_imports, reason = "autoref specialization: one of the two traits is used, which one depends on the type")]
                use __setl::{ViaNotStorable as _, ViaStorable as _};
                (&&__setl::StorableProbe::<#ident>::new()).store_ops()
            }

            fn __setl_make_default() -> ::core::option::Option<__setl::BoxedFactory> {
                #[allow(unused_imports, reason = "autoref specialization: one of the two traits is used, which one depends on the type")]
                use __setl::{ViaDefault as _, ViaNoDefault as _};
                (&&__setl::DefaultProbe::<#ident>::new()).make()
            }

            __setl::inventory::submit! {
                __setl::Registration::__new(
                    #name,
                    ::core::module_path!(),
                    <#ident as __setl::FactoryWiring>::signature,
                    __setl_make_default,
                )
            }

            fn __setl_check_producers() {
                #(#producer_checks)*
                #storage_check
            }
        };
    }
}
