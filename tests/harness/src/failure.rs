//! The error type of scenarios and harness helpers: a readable assertion message.

use std::fmt;

/// Why a scenario or a harness step failed, written for a human reading a test log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    /// A failure with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// Prefixes the message with the step that failed, so nested helpers read as a path.
    #[must_use]
    pub fn context(self, step: &str) -> Self {
        Self(format!("{step}: {}", self.0))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self(format!("i/o error: {e}"))
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Self(format!("json error: {e}"))
    }
}

/// Adds a step name to the error of a `Result`.
pub trait Context<T> {
    /// Prefixes an error with `step`.
    fn context(self, step: &str) -> Result<T, Failure>;
}

impl<T, E: Into<Failure>> Context<T> for Result<T, E> {
    fn context(self, step: &str) -> Result<T, Failure> {
        self.map_err(|e| e.into().context(step))
    }
}

/// Returns `Err(Failure)` with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::Failure::new(format!($($msg)+)));
        }
    };
}

/// Returns `Err(Failure)` unless both sides are equal; the message shows both values.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($msg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err($crate::Failure::new(format!(
                "{}: expected {:?}, got {:?}", format!($($msg)+), right, left
            )));
        }
    }};
}
