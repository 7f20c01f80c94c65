//! The CLI's errors: one line each, with what to do, and an exit code per
//! kind.

use std::fmt;
use std::process::ExitCode;

/// What went wrong, which decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Bad arguments or input: a flag, a method name, request JSON. Exit 2.
    Usage,
    /// The plugin did not start, handshake or connect, or cannot be used
    /// this way. Exit 3.
    Plugin,
    /// The RPC ran and failed. Exit 4.
    Call,
    /// Interrupted by the user. Exit 130.
    Interrupted,
}

impl Kind {
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Self::Usage => 2,
            Self::Plugin => 3,
            Self::Call => 4,
            Self::Interrupted => 130,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::Plugin => "plugin",
            Self::Call => "call",
            Self::Interrupted => "interrupted",
        }
    }
}

/// One error, shown as `goplug: error: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CliError {
    pub(crate) kind: Kind,
    /// One line: what failed, then what to do.
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    pub(crate) fn plugin(message: impl Into<String>) -> Self {
        Self::new(Kind::Plugin, message)
    }

    pub(crate) fn call(message: impl Into<String>) -> Self {
        Self::new(Kind::Call, message)
    }

    pub(crate) fn interrupted() -> Self {
        Self::new(Kind::Interrupted, "interrupted; the plugin was stopped")
    }

    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: one_line(&message.into()),
        }
    }

    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.exit_code())
    }

    /// The error as a JSON value, for `--json` output.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind.as_str(),
            "message": self.message,
            "exit_code": self.kind.exit_code(),
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Folds a message onto one line: lines joined with "; ", whitespace
/// runs collapsed.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_codes_distinct() {
        let e = CliError::plugin("first\n\n  second  \n");
        assert_eq!(e.message, "first; second");
        let codes: Vec<u8> = [Kind::Usage, Kind::Plugin, Kind::Call, Kind::Interrupted]
            .iter()
            .map(|k| k.exit_code())
            .collect();
        assert_eq!(codes, [2, 3, 4, 130]);
        assert_eq!(e.to_json()["exit_code"], 3);
    }
}
