//! The typed models of a `#[factory]` struct and of a `#[derive(Schema)]` struct, keeping the
//! original `syn` nodes for spans.

use proc_macro2::Span;
use syn::{Data, DeriveInput, Fields, GenericArgument, Ident, ItemStruct, LitInt, LitStr, Path, PathArguments, Type};

use crate::attr::{self, FactoryArgs};
use crate::ctxt::Ctxt;

/// A factory struct, its output-side arguments and its inputs.
pub(crate) struct FactoryStruct {
    pub(crate) ident: Ident,
    pub(crate) output_id: Option<LitStr>,
    /// `storage = ..`: the output's storage level, already checked to be a known one.
    pub(crate) storage: Option<Ident>,
    pub(crate) consumers: Vec<Path>,
    pub(crate) inputs: Vec<Input>,
}

/// A `Delivery<T>` field.
pub(crate) struct Input {
    pub(crate) field: Ident,
    pub(crate) payload: Type,
    pub(crate) producer: Option<Path>,
    pub(crate) id: Option<LitStr>,
    pub(crate) optional: bool,
    /// `release = ..`: the phase after which the runtime empties the slot.
    pub(crate) release: Option<Ident>,
}

impl FactoryStruct {
    /// Reads the struct, removing the `#[delivery]` attributes from it (they are not real
    /// attributes once the macro has read them).
    pub(crate) fn from_item(cx: &mut Ctxt, item: &mut ItemStruct, args: FactoryArgs) -> Self {
        if !item.generics.params.is_empty() {
            cx.error_spanned_by(
                &item.generics,
                "#[factory] does not support generic structs: the registry needs one concrete type; \
                 declare a non-generic struct per instantiation",
            );
        }
        let mut inputs = Vec::new();
        match &mut item.fields {
            Fields::Named(fields) => {
                for field in &mut fields.named {
                    let mut marks = Vec::new();
                    field.attrs.retain(|attr| {
                        let is_delivery = attr.path().is_ident("delivery");
                        if is_delivery {
                            marks.push(attr.clone());
                        }
                        !is_delivery
                    });
                    for repeated in marks.iter().skip(1) {
                        cx.error_spanned_by(repeated, "duplicate #[delivery] attribute; merge the keys into one");
                    }
                    let payload = delivery_payload(&field.ty);
                    let Some(ident) = field.ident.clone() else { continue };
                    match (marks.first(), payload) {
                        (Some(mark), Some(payload)) => {
                            let args = attr::parse_delivery_args(cx, mark);
                            inputs.push(Input {
                                field: ident,
                                payload,
                                producer: args.producer,
                                id: args.id,
                                optional: args.optional,
                                release: args.release,
                            });
                        }
                        (Some(_), None) => cx.error_spanned_by(
                            &field.ty,
                            "#[delivery] needs a field of type `Delivery<T>`, where `T` is the delivered payload",
                        ),
                        (None, Some(payload)) => inputs.push(Input {
                            field: ident,
                            payload,
                            producer: None,
                            id: None,
                            optional: false,
                            release: None,
                        }),
                        (None, None) => {}
                    }
                }
            }
            Fields::Unnamed(fields) => cx.error_spanned_by(
                fields,
                "#[factory] needs a struct with named fields, so inputs can be reported by name",
            ),
            Fields::Unit => {}
        }
        FactoryStruct {
            ident: item.ident.clone(),
            output_id: args.id,
            storage: args.storage,
            consumers: args.consumers,
            inputs,
        }
    }
}

/// `T` when `ty` is `Delivery<T>` (by the last path segment, so `setl_core::Delivery<T>` works).
fn delivery_payload(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    if segment.ident != "Delivery" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else { return None };
    match args.args.first() {
        Some(GenericArgument::Type(payload)) if args.args.len() == 1 => Some(payload.clone()),
        _ => None,
    }
}

/// A `#[derive(Schema)]` struct: its fields in order, each with its column.
pub(crate) struct SchemaStruct<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) fields: Vec<SchemaField<'a>>,
}

/// One field of a schema struct, with its settings.
pub(crate) struct SchemaField<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    /// The column name: `rename`, or the field's name.
    pub(crate) column: String,
    /// `decimal(precision, scale)` and the key's span.
    pub(crate) decimal: Option<(LitInt, LitInt, Span)>,
}

impl<'a> SchemaStruct<'a> {
    /// Reads the struct, field by field; the model has every field that could be read. Checks that
    /// need the whole model are `check::schema`'s, run on the result.
    pub(crate) fn from_input(cx: &mut Ctxt, input: &'a DeriveInput) -> Self {
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
                Fields::Named(named) => Some(named),
                other => {
                    cx.error_spanned_by(
                        other,
                        "#[derive(Schema)] needs a struct with named fields: the names are the column names",
                    );
                    None
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(data.enum_token, "#[derive(Schema)] needs a struct with named fields, not an enum");
                None
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "#[derive(Schema)] needs a struct with named fields, not a union",
                );
                None
            }
        };
        let fields = named
            .into_iter()
            .flat_map(|named| &named.named)
            .filter_map(|field| {
                // Named fields always have an ident.
                let ident = field.ident.as_ref()?;
                let args = attr::parse_schema_field_args(cx, &field.attrs);
                let column = match &args.rename {
                    Some(name) => name.value(),
                    None => ident.to_string().trim_start_matches("r#").to_owned(),
                };
                Some(SchemaField { ident, ty: &field.ty, column, decimal: args.decimal })
            })
            .collect();
        SchemaStruct { ident: &input.ident, fields }
    }
}
