//! The crate's one error type.

use crate::cty::AttributePath;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which encoding a value error happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// MessagePack, what hosts send and expect (`DynamicValue.msgpack`).
    Msgpack,
    /// JSON, what state files hold (`RawState.json`, `DynamicValue.json`).
    Json,
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Msgpack => "msgpack",
            Self::Json => "JSON",
        })
    }
}

/// Everything that can go wrong in goplug-terraform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from a peer did not hold a value of the expected type.
    #[error(
        "cannot decode the {encoding} value at {path}: {reason} (the peer sent a value that does not match the schema's type)"
    )]
    Decode {
        /// The encoding.
        encoding: Encoding,
        /// Where in the value.
        path: AttributePath,
        /// What was wrong.
        reason: String,
    },
    /// A value did not match the type it was to be written as.
    #[error("cannot encode the value at {path} as {encoding}: {reason}")]
    Encode {
        /// The encoding.
        encoding: Encoding,
        /// Where in the value.
        path: AttributePath,
        /// What was wrong.
        reason: String,
    },
    /// A type's JSON form was not a cty type.
    #[error("invalid cty type: {reason}")]
    Type {
        /// What was wrong.
        reason: String,
    },
    /// Serving the provider failed.
    #[cfg(feature = "provider")]
    #[error("serving the provider failed: {0}")]
    Serve(#[from] goplug::Error),
}
