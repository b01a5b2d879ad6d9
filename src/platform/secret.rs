//! Secrets the platform hands the agent (`ARBITRIUM_DELETE_TOKEN`, `ARBITRIUM_CONTEXT_TOKEN`).
//!
//! A [`Secret`] prints `<redacted>` through both `Debug` and `Display` and is deliberately not
//! `Serialize`, so it cannot leak through a log line, an error message or an API response by
//! accident. The only way to read it is [`Secret::expose`], called once per secret: where the
//! `authorization` header is built.

use std::fmt;

/// What a secret prints as, everywhere.
pub const REDACTED: &str = "<redacted>";

/// A value that must never be logged, served or returned.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call it only where the secret leaves the process for the party that
    /// issued it (the `authorization` header of a platform call).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2-token");
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
        assert_eq!(secret.expose(), "hunter2-token");
    }
}
