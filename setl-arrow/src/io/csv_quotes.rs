//! Finds a CSV quoted field that is never closed.
//!
//! csv-core (under both the `csv` crate and arrow-csv) ends an open quoted field at the end of
//! the file without an error, so one stray quote silently turns the rest of the file into a
//! single field. [`QuoteCheck`] passes a file's bytes through unchanged while following the
//! quoting as csv-core does, and fails the read that reaches the end of the file while a quoted
//! field is open, after recording where that quote opened.

use std::io::{self, Read};
use std::sync::{Arc, OnceLock};

/// Where a quoted field that the file never closes opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenQuote {
    /// The 0-based index of its record among all records (a header is record 0).
    pub(crate) record: u64,
    /// The 1-based line where its record starts.
    pub(crate) record_line: u64,
    /// The 1-based line of the opening quote.
    pub(crate) line: u64,
    /// The 1-based field (column) the quote opens.
    pub(crate) field: usize,
}

/// The CSV dialect the check follows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    pub(crate) delimiter: u8,
    pub(crate) quote: u8,
    pub(crate) escape: Option<u8>,
    pub(crate) comment: Option<u8>,
}

/// The states of csv-core's reader that matter for quoting (`transition_nfa` in csv-core), with
/// its default `\r`/`\n` terminator and doubled quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// After the escape byte inside a quoted field.
    InEscaped,
    /// After a quote inside a quoted field: it closes the field unless another quote follows.
    QuoteInQuoted,
    InComment,
}

/// A reader that passes bytes through and fails at the end of the input if a quoted field is
/// still open; the place is then in the shared [`found`](Self::new) cell.
#[derive(Debug)]
pub(crate) struct QuoteCheck<R> {
    inner: R,
    dialect: Dialect,
    state: State,
    line: u64,
    /// Records started so far.
    records: u64,
    record_line: u64,
    field: usize,
    open: OpenQuote,
    found: Arc<OnceLock<OpenQuote>>,
}

impl<R: Read> QuoteCheck<R> {
    /// Checks `inner`; an open quote at its end is recorded in `found`.
    pub(crate) fn new(inner: R, dialect: Dialect, found: Arc<OnceLock<OpenQuote>>) -> Self {
        let none = OpenQuote { record: 0, record_line: 1, line: 1, field: 1 };
        QuoteCheck {
            inner,
            dialect,
            state: State::StartRecord,
            line: 1,
            records: 0,
            record_line: 1,
            field: 1,
            open: none,
            found,
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        let Dialect { delimiter, quote, escape, comment } = self.dialect;
        let terminator = |b: u8| b == b'\n' || b == b'\r';
        for &b in bytes {
            self.state = match self.state {
                State::StartRecord if terminator(b) => State::StartRecord,
                State::StartRecord if comment == Some(b) => State::InComment,
                State::StartRecord => {
                    self.records += 1;
                    self.record_line = self.line;
                    self.field = 1;
                    self.start_field(b)
                }
                State::StartField => self.start_field(b),
                State::InField | State::QuoteInQuoted if b == delimiter => {
                    self.field += 1;
                    State::StartField
                }
                State::InField | State::QuoteInQuoted if terminator(b) => State::StartRecord,
                State::InField => State::InField,
                State::QuoteInQuoted if b == quote => State::InQuoted,
                State::QuoteInQuoted => State::InField,
                State::InQuoted if b == quote => State::QuoteInQuoted,
                State::InQuoted if escape == Some(b) => State::InEscaped,
                State::InQuoted | State::InEscaped => State::InQuoted,
                State::InComment if b == b'\n' => State::StartRecord,
                State::InComment => State::InComment,
            };
            if b == b'\n' {
                self.line += 1;
            }
        }
    }

    fn start_field(&mut self, b: u8) -> State {
        let Dialect { delimiter, quote, .. } = self.dialect;
        if b == quote {
            self.open = OpenQuote {
                record: self.records - 1,
                record_line: self.record_line,
                line: self.line,
                field: self.field,
            };
            State::InQuoted
        } else if b == delimiter {
            self.field += 1;
            State::StartField
        } else if b == b'\n' || b == b'\r' {
            State::StartRecord
        } else {
            State::InField
        }
    }
}

impl<R: Read> Read for QuoteCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && matches!(self.state, State::InQuoted | State::InEscaped) {
            let _ = self.found.set(self.open);
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a quoted field is never closed"));
        }
        self.scan(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, escape: Option<u8>, comment: Option<u8>) -> Option<OpenQuote> {
        let found = Arc::new(OnceLock::new());
        let dialect = Dialect { delimiter: b',', quote: b'"', escape, comment };
        let mut reader = QuoteCheck::new(text.as_bytes(), dialect, found.clone());
        let mut sink = Vec::new();
        let result = reader.read_to_end(&mut sink);
        assert_eq!(result.is_err(), found.get().is_some(), "{text:?}");
        found.get().copied()
    }

    #[test]
    fn closed_quotes_pass_and_the_open_one_is_located() {
        for text in [
            "a,b\n1,\"x\"\"y\"\n",
            "a,b\n1,\"two\nlines\"\n",
            "a,b\r\n1,ab\"c\r\n",
            "\"\"",
            "a,\"b\"x,c\n",
            "# comment with \" a quote\na\n",
        ] {
            assert_eq!(check(text, None, Some(b'#')), None, "{text:?}");
        }
        assert_eq!(check("a,\"x\\\"y\"\n", Some(b'\\'), None), None);
        assert_eq!(
            check("a,b\n1,\"ok\"\n\n2,x,\"oops\n3,4\n", None, None),
            Some(OpenQuote { record: 2, record_line: 4, line: 4, field: 3 })
        );
        assert_eq!(
            check("a,b\n\"x\ny\",\"open", None, None),
            Some(OpenQuote { record: 1, record_line: 2, line: 3, field: 2 })
        );
        assert_eq!(check("\"a,b\n1,2\n", None, None), Some(OpenQuote { record: 0, record_line: 1, line: 1, field: 1 }));
        // An escape before the end keeps the field open.
        assert!(check("a,\"x\\", Some(b'\\'), None).is_some());
    }
}
