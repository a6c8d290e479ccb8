//! Printing an error with its causes.
//!
//! Convention of every error type of this crate: a variant either forwards its inner
//! error whole (`#[error(transparent)]`), or has a message of its own that does **not**
//! interpolate the inner error, which is exposed as [`Error::source`] instead
//! (`#[source]` / `#[from]`). Printed as a chain (`outer: inner: root`, what [`Chain`]
//! and `anyhow`'s `{:#}` print), every fact then appears exactly once.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each error of its [`Error::source`] chain, joined by
/// `": "`, outermost first (the format of `anyhow`'s `{:#}`).
///
/// ```
/// use cxl_passthrough::backend::BackendError;
/// use cxl_passthrough::errors::Chain;
///
/// let e = BackendError::errno("VFIO_DEVICE_GET_INFO", libc::EIO);
/// assert_eq!(
///     Chain(&e).to_string(),
///     "VFIO_DEVICE_GET_INFO failed: Input/output error (os error 5)"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The message of `e` and of each error of its source chain, outermost first.
pub fn messages(e: &(dyn Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}
