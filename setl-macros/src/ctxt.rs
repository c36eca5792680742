//! Error collection for one macro expansion (serde_derive's `Ctxt`, simplified).

use std::fmt::Display;

use quote::ToTokens;

/// Collects errors so that all of them are reported together, each on its own span.
///
/// A context dropped without [`check`](Self::check) panics: an expansion that forgot to look at
/// its errors would otherwise emit code for input it had rejected, and lose the messages.
pub(crate) struct Ctxt {
    /// `None` once checked.
    errors: Option<Vec<syn::Error>>,
}

impl Default for Ctxt {
    fn default() -> Self {
        Ctxt { errors: Some(Vec::new()) }
    }
}

impl Ctxt {
    /// Records an error spanned on `tokens`.
    pub(crate) fn error_spanned_by(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records a `syn` error.
    pub(crate) fn syn_error(&mut self, error: syn::Error) {
        self.errors.as_mut().expect("a checked Ctxt records no more errors").push(error);
    }

    /// All errors combined into one, or `Ok` when there were none.
    pub(crate) fn check(mut self) -> syn::Result<()> {
        let mut errors = self.errors.take().expect("checked once").into_iter();
        let Some(mut combined) = errors.next() else { return Ok(()) };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if self.errors.is_some() && !std::thread::panicking() {
            panic!("a macro expansion dropped its error context without checking it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ctxt;

    #[test]
    fn every_recorded_error_comes_out_of_check() {
        let mut cx = Ctxt::default();
        cx.error_spanned_by(quote::quote!(a), "first");
        cx.error_spanned_by(quote::quote!(b), "second");
        let messages: Vec<String> = cx.check().unwrap_err().into_iter().map(|error| error.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    #[should_panic(expected = "without checking it")]
    fn a_context_dropped_unchecked_panics() {
        let mut cx = Ctxt::default();
        cx.error_spanned_by(quote::quote!(a), "lost");
    }
}
