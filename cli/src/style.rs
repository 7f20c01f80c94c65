//! Terminal styling: hand-rolled ANSI, only on terminals, and never when
//! `NO_COLOR` is set (<https://no-color.org>).

use std::io::IsTerminal;

/// Whether to colour one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    color: bool,
}

impl Style {
    /// Colour stdout when it is a terminal.
    pub(crate) fn stdout() -> Self {
        #[expect(
            clippy::disallowed_methods,
            reason = "the CLI's stdout is its output; only asked whether it is a terminal"
        )]
        let terminal = std::io::stdout().is_terminal();
        Self {
            color: terminal && color_allowed(),
        }
    }

    /// Colour stderr when it is a terminal.
    pub(crate) fn stderr() -> Self {
        Self {
            color: std::io::stderr().is_terminal() && color_allowed(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub(crate) fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    pub(crate) fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub(crate) fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub(crate) fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    pub(crate) fn cyan(self, text: &str) -> String {
        self.paint("36", text)
    }
}

fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Pads `text` to `width` columns (by chars), for aligned columns whose
/// cells may carry ANSI codes added after padding.
pub(crate) fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_style_adds_no_codes_and_pad_aligns() {
        let plain = Style { color: false };
        assert_eq!(plain.bold("x"), "x");
        let colored = Style { color: true };
        assert_eq!(colored.red("x"), "\x1b[31mx\x1b[0m");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcdef", 4), "abcdef");
    }
}
