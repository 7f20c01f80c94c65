//! Where a value sits inside a resource's object: Terraform's attribute
//! path (the steps of the protocol's `AttributePath`).

use std::fmt;

/// One step of an [`AttributePath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathStep {
    /// An attribute of an object, or a nested block by type name.
    Attribute(String),
    /// An element of a map, by key.
    Key(String),
    /// An element of a list or tuple (or the position in a set), by index.
    Index(i64),
}

/// A path from the root of a configuration, state or plan object to one
/// value in it, such as `.rule[0].name`. Diagnostics carry one to point
/// at the attribute that was wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AttributePath {
    steps: Vec<PathStep>,
}

impl AttributePath {
    /// The path of the object itself (no steps).
    pub fn root() -> Self {
        Self::default()
    }

    /// The path of the root object's attribute `name`.
    pub fn attribute(name: impl Into<String>) -> Self {
        Self::root().attr(name)
    }

    /// This path, then attribute `name`.
    #[must_use]
    pub fn attr(mut self, name: impl Into<String>) -> Self {
        self.steps.push(PathStep::Attribute(name.into()));
        self
    }

    /// This path, then the map element at `key`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.steps.push(PathStep::Key(key.into()));
        self
    }

    /// This path, then the list or tuple element at `index`.
    #[must_use]
    pub fn index(mut self, index: i64) -> Self {
        self.steps.push(PathStep::Index(index));
        self
    }

    /// The steps from the root.
    pub fn steps(&self) -> &[PathStep] {
        &self.steps
    }

    /// Whether this is the root (no steps).
    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    pub(crate) fn push(&mut self, step: PathStep) {
        self.steps.push(step);
    }

    pub(crate) fn pop(&mut self) {
        self.steps.pop();
    }
}

impl From<Vec<PathStep>> for AttributePath {
    fn from(steps: Vec<PathStep>) -> Self {
        Self { steps }
    }
}

impl fmt::Display for AttributePath {
    /// `.name[0]["key"]`, or `(root)` for the object itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return f.write_str("(root)");
        }
        for step in &self.steps {
            match step {
                PathStep::Attribute(name) => write!(f, ".{name}")?,
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
                PathStep::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_terraform_writes_them() {
        let cases = [
            (AttributePath::root(), "(root)"),
            (AttributePath::attribute("path"), ".path"),
            (
                AttributePath::attribute("rule").index(0).attr("name"),
                ".rule[0].name",
            ),
            (
                AttributePath::attribute("tags").key("a\"b"),
                ".tags[\"a\\\"b\"]",
            ),
        ];
        for (path, text) in cases {
            assert_eq!(path.to_string(), text);
        }
    }
}
