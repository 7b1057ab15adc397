//! The runner's error types.
//!
//! Inside the runner every fallible step returns [`BoxError`], so the errors of the crates it
//! measures (and `io::Error`) convert with `?` as they are. The helpers shared by every row
//! ([`Failure`]: child arguments, the words segment, the child process) return a concrete
//! error that also converts into [`Miss`](crate::rows::Miss) and into `String`, so a row
//! written against either kind of result can use them with `?`.

use std::error::Error;
use std::fmt;

/// Any error, as the runner passes it up: `?` converts every `Error + Send + Sync` (and a
/// `String` or `&str` message) into it.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// The error of a shared helper: what was being done, and the error that stopped it (its
/// `source()`), if any.
#[derive(Debug)]
pub struct Failure {
    what: String,
    source: Option<BoxError>,
}

impl Failure {
    /// A failure with no underlying error.
    pub fn msg(what: impl Into<String>) -> Failure {
        Failure {
            what: what.into(),
            source: None,
        }
    }

    /// A failure while doing `what`, caused by `source`.
    pub fn new(what: impl Into<String>, source: impl Into<BoxError>) -> Failure {
        Failure {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        chain(&f)
    }
}

/// An error and its sources, `outer: inner: innermost`, for a table cell or a child's stderr.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        let text = inner.to_string();
        // A message that already ends with its cause's text (`format!("ctx: {e}")`) is not
        // repeated.
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        next = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn io_step() -> Result<(), BoxError> {
        Err(io::Error::new(io::ErrorKind::NotFound, "no such thing"))?;
        Ok(())
    }

    fn helper() -> Result<(), Failure> {
        io_step().map_err(|e| Failure::new("opening the words", e))
    }

    fn legacy_row() -> Result<(), String> {
        helper()?;
        Ok(())
    }

    fn boxed_row() -> Result<(), BoxError> {
        helper()?;
        Ok(())
    }

    #[test]
    fn failures_convert_with_their_cause() {
        assert_eq!(
            legacy_row().unwrap_err(),
            "opening the words: no such thing"
        );
        let e = boxed_row().unwrap_err();
        assert_eq!(e.to_string(), "opening the words");
        assert_eq!(chain(&*e), "opening the words: no such thing");
        assert!(e.source().is_some());
        assert_eq!(chain(&Failure::msg("plain")), "plain");
    }
}
