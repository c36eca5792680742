//! Checks that need a whole parsed model, not one attribute: distinct column names, decimal
//! precision and scale in range.

use std::collections::HashMap;

use syn::LitInt;

use crate::ast::SchemaStruct;
use crate::ctxt::Ctxt;

/// Every problem of a schema struct that parsing its attributes one by one cannot see.
pub(crate) fn schema(cx: &mut Ctxt, model: &SchemaStruct<'_>) {
    let mut seen = HashMap::new();
    for field in &model.fields {
        if let Some((precision, scale, _)) = &field.decimal {
            decimal(cx, precision, scale);
        }
        if let Some(previous) = seen.insert(field.column.as_str(), field.ident) {
            cx.error_spanned_by(
                field.ident,
                format!("column `{}` is already the name of field `{previous}`", field.column),
            );
        }
    }
}

/// A Decimal128's precision is 1 to 38, its scale an `i8` no larger than the precision.
fn decimal(cx: &mut Ctxt, precision: &LitInt, scale: &LitInt) {
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
