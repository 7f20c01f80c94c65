//! The SHA-256 a host pins for a plugin binary (go-plugin's `SecureConfig`
//! hash), as a value: parsing, printing and comparing. Hashing a file and
//! executing what was hashed is the host's part (`host::checksum`).

use std::fmt;

use sha2::{Digest, Sha256};

/// The SHA-256 of a plugin binary, as a host pins it.
///
/// ```
/// use goplug::host::Checksum;
/// let sum: Checksum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse()?;
/// assert_eq!(sum, Checksum::of_bytes(b""));
/// # Ok::<(), goplug::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum([u8; 32]);

impl Checksum {
    /// A checksum from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The SHA-256 of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Compares in constant time.
    #[cfg(feature = "host")]
    pub(crate) fn matches(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

/// A text that is not a SHA-256 checksum. Converts into
/// [`Error::Config`](crate::Error::Config).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a SHA-256 checksum (64 hex digits)")]
pub struct ChecksumParseError {
    /// The text as given.
    pub text: String,
}

impl std::str::FromStr for Checksum {
    type Err = ChecksumParseError;

    /// Parses 64 hex digits (the output of `sha256sum`), optionally prefixed
    /// with `sha256:`.
    fn from_str(text: &str) -> Result<Self, ChecksumParseError> {
        let hex = text.trim();
        let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
        let invalid = || ChecksumParseError {
            text: text.to_owned(),
        };
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hex() {
        let text = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let sum: Checksum = text.parse().unwrap();
        assert_eq!(sum.to_string(), text);
        assert_eq!(sum, Checksum::of_bytes(b""));
        assert_eq!(format!("sha256:{text}").parse::<Checksum>().unwrap(), sum);
        for bad in [
            "",
            "xyz",
            &text[..63],
            &format!("{text}00"),
            &text.replace('e', "g"),
        ] {
            let err = bad.parse::<Checksum>().unwrap_err();
            assert_eq!(err.text, bad);
        }
    }

    #[test]
    #[cfg(feature = "host")]
    fn comparison_is_exact() {
        let a = Checksum::of_bytes(b"a");
        let mut bytes = *a.as_bytes();
        bytes[31] ^= 1;
        assert!(a.matches(&a));
        assert!(!a.matches(&Checksum::from_bytes(bytes)));
    }
}
