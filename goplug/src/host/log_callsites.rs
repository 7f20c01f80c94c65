//! `tracing` callsites made at run time, so that a plugin's hclog
//! key/values become fields of their own on the host.
//!
//! `tracing` wants every event's field names and target in `'static`
//! metadata registered with its process-wide callsite registry, which keeps
//! them forever; a plugin's keys are only known when its line arrives. So a
//! callsite is leaked once per distinct shape (level, target, field names)
//! and kept in a process-wide table: callsites are process-wide by
//! `tracing`'s design, and a table per client would leak the same shape
//! again for each client. The table is bounded ([`MAX_SHAPES`]); past it,
//! [`lookup`] answers `None` and the caller falls back to a static callsite.
//! Hand-written: crates that do this (`tracing_dynamic`) are unmaintained
//! or unbounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::Level;
use tracing::callsite::{Callsite, Identifier};
use tracing::field::FieldSet;
use tracing::metadata::Kind;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata};

/// Distinct shapes leaked at most, for the whole process.
pub(crate) const MAX_SHAPES: usize = 1024;

/// Fields per event at most; a record with more falls back.
pub(crate) const MAX_FIELDS: usize = 64;

/// The callsites made so far, by a hash of their shape (level, target,
/// field names), so that finding one allocates nothing.
static CALLSITES: Mutex<BTreeMap<u64, Vec<&'static LogCallsite>>> = Mutex::new(BTreeMap::new());

/// A leaked callsite for one shape.
#[derive(Debug)]
pub(crate) struct LogCallsite {
    interest: AtomicU8,
    metadata: OnceLock<Metadata<'static>>,
}

const INTEREST_NEVER: u8 = 0;
const INTEREST_SOMETIMES: u8 = 1;
const INTEREST_ALWAYS: u8 = 2;

/// What `metadata()` answers in the instant between leaking a callsite
/// and filling in its metadata (nobody can ask then: it is not registered).
static UNFILLED_SITE: LogCallsite = LogCallsite {
    interest: AtomicU8::new(INTEREST_NEVER),
    metadata: OnceLock::new(),
};
static UNFILLED: Metadata<'static> = Metadata::new(
    "goplug plugin log",
    "goplug::plugin",
    Level::TRACE,
    None,
    None,
    None,
    FieldSet::new(&[], Identifier(&UNFILLED_SITE)),
    Kind::EVENT,
);

impl Callsite for LogCallsite {
    fn set_interest(&self, interest: Interest) {
        let value = if interest.is_never() {
            INTEREST_NEVER
        } else if interest.is_always() {
            INTEREST_ALWAYS
        } else {
            INTEREST_SOMETIMES
        };
        self.interest.store(value, Ordering::Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.metadata.get().unwrap_or(&UNFILLED)
    }
}

impl LogCallsite {
    /// Sends an event with `values`, one per field name of this callsite's
    /// shape and in that order, to the current subscriber if it wants it.
    pub(crate) fn dispatch(&'static self, values: &[Option<&dyn tracing::Value>]) {
        if self.interest.load(Ordering::Relaxed) == INTEREST_NEVER {
            return;
        }
        let metadata = self.metadata();
        if values.len() != metadata.fields().len() {
            return;
        }
        let values = metadata.fields().value_set_all(values);
        tracing::dispatcher::get_default(|dispatch| {
            if dispatch.enabled(metadata) {
                dispatch.event(&Event::new(metadata, &values));
            }
        });
    }
}

/// The callsite for events at `level` with `target` and these field names,
/// made and registered the first time; `None` once the table is full or
/// for more than [`MAX_FIELDS`] fields.
pub(crate) fn lookup(level: Level, target: &str, names: &[&str]) -> Option<&'static LogCallsite> {
    if names.len() > MAX_FIELDS {
        return None;
    }
    let key = shape_hash(level, target, names);
    let mut table = CALLSITES.lock().ok()?;
    let same_shape = |callsite: &&&'static LogCallsite| {
        let metadata = callsite.metadata();
        *metadata.level() == level
            && metadata.target() == target
            && metadata
                .fields()
                .iter()
                .map(|f| f.name())
                .eq(names.iter().copied())
    };
    if let Some(callsite) = table
        .get(&key)
        .and_then(|sites| sites.iter().find(same_shape))
    {
        return Some(*callsite);
    }
    if table.values().map(Vec::len).sum::<usize>() >= MAX_SHAPES {
        return None;
    }
    let callsite: &'static LogCallsite = Box::leak(Box::new(LogCallsite {
        interest: AtomicU8::new(INTEREST_SOMETIMES),
        metadata: OnceLock::new(),
    }));
    let names: &'static [&'static str] = names
        .iter()
        .map(|name| &*(*name).to_owned().leak())
        .collect::<Vec<_>>()
        .leak();
    let metadata = Metadata::new(
        "goplug plugin log",
        target.to_owned().leak(),
        level,
        None,
        None,
        None,
        FieldSet::new(names, Identifier(callsite)),
        Kind::EVENT,
    );
    let _ = callsite.metadata.set(metadata);
    tracing::callsite::register(callsite);
    table.entry(key).or_default().push(callsite);
    Some(callsite)
}

fn shape_hash(level: Level, target: &str, names: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    level.as_str().hash(&mut hasher);
    target.hash(&mut hasher);
    names.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_callsite_per_shape() {
        let a = lookup(Level::INFO, "goplug::plugin::t1", &["message", "k"]).unwrap();
        let b = lookup(Level::INFO, "goplug::plugin::t1", &["message", "k"]).unwrap();
        assert!(std::ptr::eq(a, b));
        let other_level = lookup(Level::WARN, "goplug::plugin::t1", &["message", "k"]).unwrap();
        let other_names = lookup(Level::INFO, "goplug::plugin::t1", &["message", "j"]).unwrap();
        let other_target = lookup(Level::INFO, "goplug::plugin::t2", &["message", "k"]).unwrap();
        for other in [other_level, other_names, other_target] {
            assert!(!std::ptr::eq(a, other));
        }
        let metadata = a.metadata();
        assert_eq!(metadata.target(), "goplug::plugin::t1");
        assert_eq!(*metadata.level(), Level::INFO);
        let names: Vec<_> = metadata.fields().iter().map(|f| f.name()).collect();
        assert_eq!(names, ["message", "k"]);
    }

    #[test]
    fn too_many_fields_fall_back() {
        let names: Vec<String> = (0..=MAX_FIELDS).map(|i| format!("k{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(lookup(Level::INFO, "goplug::plugin", &names).is_none());
        assert!(lookup(Level::INFO, "goplug::plugin", &names[..MAX_FIELDS]).is_some());
    }
}
