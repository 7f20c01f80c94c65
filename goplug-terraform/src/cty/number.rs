//! cty's arbitrary-precision number: an integer, a binary float, or a
//! decimal kept as text, so a value written in configuration as `0.1`
//! goes back to the host exactly as it came.

use std::fmt;

/// A cty number. Integers that fit 64 bits are kept as such; fractions
/// parsed from text stay decimal (never rounded through a binary float);
/// floats given as `f64` stay floats. Equality compares the values.
#[derive(Clone, Debug)]
pub struct Number(Repr);

#[derive(Clone, Debug)]
enum Repr {
    Int(i64),
    /// Finite and not an integer in the `i64` range, or infinite.
    Float(f64),
    /// `digits × 10^exponent`; no leading or trailing zeros in `digits`,
    /// never representable as `Int`.
    Decimal {
        negative: bool,
        digits: String,
        exponent: i64,
    },
}

/// Exponents beyond this are written in scientific notation rather than
/// as plain digits.
const PLAIN_EXPONENT_LIMIT: i64 = 400;

impl Number {
    /// The number `value`.
    pub fn from_i64(value: i64) -> Self {
        Self(Repr::Int(value))
    }

    /// The number `value`.
    pub fn from_u64(value: u64) -> Self {
        match i64::try_from(value) {
            Ok(v) => Self(Repr::Int(v)),
            Err(_) => Self(Repr::Decimal {
                negative: false,
                digits: value.to_string().trim_end_matches('0').to_owned(),
                exponent: i64::from(trailing_zeros(value)),
            }),
        }
    }

    /// The number `value`, or `None` for NaN (cty has no NaN). Infinities
    /// are numbers; integral values are exact integers.
    pub fn from_f64(value: f64) -> Option<Self> {
        if value.is_nan() {
            return None;
        }
        if value.is_infinite() || value.fract() != 0.0 {
            return Some(Self(Repr::Float(value)));
        }
        // Inside the i64 range the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&value) {
            return Some(Self(Repr::Int(value as i64)));
        }
        let sign = if value < 0.0 { "-" } else { "" };
        Self::parse(&format!("{sign}{}", integral_digits(value.abs())))
    }

    /// Parses a decimal number as JSON and cty write them: an optional
    /// `-`, digits, an optional fraction and an optional exponent.
    pub fn parse(text: &str) -> Option<Self> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => {
                let exp = rest[at + 1..].strip_prefix('+').unwrap_or(&rest[at + 1..]);
                if exp.is_empty()
                    || !exp
                        .trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                (&rest[..at], exp.parse::<i64>().ok()?)
            }
            None => (rest, 0),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) if !f.is_empty() => (i, f),
            Some(_) => return None,
            None => (mantissa, ""),
        };
        if int_part.is_empty()
            || (int_part.len() > 1 && int_part.starts_with('0'))
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let all = format!("{int_part}{frac_part}");
        let frac_len = i64::try_from(frac_part.len()).ok()?;
        let mut exponent = exponent.checked_sub(frac_len)?;
        let trimmed = all.trim_start_matches('0');
        if trimmed.is_empty() {
            return Some(Self(Repr::Int(0)));
        }
        let digits = trimmed.trim_end_matches('0');
        exponent = exponent.checked_add(i64::try_from(trimmed.len() - digits.len()).ok()?)?;
        Some(Self::from_decimal(negative, digits.to_owned(), exponent))
    }

    fn from_decimal(negative: bool, digits: String, exponent: i64) -> Self {
        if (0..=18).contains(&exponent) && digits.len() as i64 + exponent <= 19 {
            let text = format!(
                "{}{digits}{}",
                if negative { "-" } else { "" },
                "0".repeat(exponent as usize)
            );
            if let Ok(v) = text.parse::<i64>() {
                return Self(Repr::Int(v));
            }
        }
        Self(Repr::Decimal {
            negative,
            digits,
            exponent,
        })
    }

    /// The value as an `i64`, when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Int(v) => Some(v),
            _ => None,
        }
    }

    /// The value as the nearest `f64`.
    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::Int(v) => *v as f64,
            Repr::Float(v) => *v,
            Repr::Decimal { .. } => self.to_string().parse().unwrap_or(f64::NAN),
        }
    }

    /// Whether the value is an integer (of any size).
    pub fn is_integer(&self) -> bool {
        match &self.0 {
            Repr::Int(_) => true,
            Repr::Float(v) => v.fract() == 0.0,
            Repr::Decimal { exponent, .. } => *exponent >= 0,
        }
    }

    /// Whether the value is finite (cty numbers may be infinite).
    pub fn is_finite(&self) -> bool {
        !matches!(self.0, Repr::Float(v) if v.is_infinite())
    }

    /// How msgpack carries it: an integer, a float, or decimal text.
    pub(crate) fn wire(&self) -> Wire {
        match &self.0 {
            Repr::Int(v) => Wire::Int(*v),
            Repr::Float(v) => Wire::Float(*v),
            Repr::Decimal {
                negative,
                digits,
                exponent,
            } => match exact_f64(digits, *exponent) {
                // go-cty writes a fraction a float64 holds exactly as one.
                Some(v) => Wire::Float(if *negative { -v } else { v }),
                None => Wire::Text(self.to_string()),
            },
        }
    }
}

/// `digits × 10^exponent` as an `f64`, when a fraction that an `f64`
/// holds exactly.
fn exact_f64(digits: &str, exponent: i64) -> Option<f64> {
    if !(-55..0).contains(&exponent) || digits.len() > 38 {
        return None;
    }
    let digits: u128 = digits.parse().ok()?;
    let fives = 5u128.checked_pow(u32::try_from(-exponent).ok()?)?;
    if !digits.is_multiple_of(fives) {
        return None;
    }
    // digits × 10^e = (digits / 5^-e) × 2^e: exact when the mantissa fits.
    let mantissa = u64::try_from(digits / fives).ok()?;
    if mantissa >= 1 << 53 {
        return None;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    Some(mantissa as f64 * 2f64.powi(exponent as i32))
}

/// A number as msgpack carries it.
pub(crate) enum Wire {
    Int(i64),
    Float(f64),
    Text(String),
}

/// The decimal digits of a finite, integral `value` of at least 2^53:
/// its mantissa doubled once per binary exponent step.
fn integral_digits(value: f64) -> String {
    let bits = value.to_bits();
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1075;
    // Least significant digit first.
    let mut digits: Vec<u8> = mantissa
        .to_string()
        .bytes()
        .rev()
        .map(|b| b - b'0')
        .collect();
    for _ in 0..exponent.max(0) {
        let mut carry = 0;
        for digit in &mut digits {
            let doubled = *digit * 2 + carry;
            *digit = doubled % 10;
            carry = doubled / 10;
        }
        if carry > 0 {
            digits.push(carry);
        }
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

fn trailing_zeros(mut value: u64) -> u32 {
    let mut zeros = 0;
    while value != 0 && value.is_multiple_of(10) {
        value /= 10;
        zeros += 1;
    }
    zeros
}

impl fmt::Display for Number {
    /// Decimal text cty parses back to the same value; plain digits unless
    /// the exponent is huge.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(v) => write!(f, "{v}"),
            Repr::Float(v) if v.is_infinite() => {
                f.write_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
            }
            Repr::Float(v) => write!(f, "{v}"),
            Repr::Decimal {
                negative,
                digits,
                exponent,
            } => {
                if *negative {
                    f.write_str("-")?;
                }
                let len = digits.len() as i64;
                if *exponent >= 0 && *exponent <= PLAIN_EXPONENT_LIMIT {
                    write!(f, "{digits}{}", "0".repeat(*exponent as usize))
                } else if *exponent < 0 && -*exponent < len {
                    let point = (len + exponent) as usize;
                    write!(f, "{}.{}", &digits[..point], &digits[point..])
                } else if *exponent < 0 && -*exponent - len <= PLAIN_EXPONENT_LIMIT {
                    write!(f, "0.{}{digits}", "0".repeat((-*exponent - len) as usize))
                } else {
                    write!(f, "{digits}e{exponent}")
                }
            }
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Int(a), Repr::Int(b)) => a == b,
            (Repr::Float(a), Repr::Float(b)) => a == b,
            (Repr::Int(_), _) | (_, Repr::Int(_)) => false,
            // A float and a decimal: the same when the decimal is the float's
            // shortest text.
            _ => Number::parse(&self.to_string())
                .zip(Number::parse(&other.to_string()))
                .is_some_and(|(a, b)| match (a.0, b.0) {
                    (
                        Repr::Decimal {
                            negative: n1,
                            digits: d1,
                            exponent: e1,
                        },
                        Repr::Decimal {
                            negative: n2,
                            digits: d2,
                            exponent: e2,
                        },
                    ) => n1 == n2 && d1 == d2 && e1 == e2,
                    _ => false,
                }),
        }
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Self {
        Self::from_i64(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parses_to_the_value_it_names() {
        let cases = [
            ("0", "0", Some(0)),
            ("-0", "0", Some(0)),
            ("42", "42", Some(42)),
            ("-7", "-7", Some(-7)),
            ("1e3", "1000", Some(1000)),
            ("1.50E1", "15", Some(15)),
            ("0.1", "0.1", None),
            ("-12.345", "-12.345", None),
            ("1e-3", "0.001", None),
            ("9223372036854775807", "9223372036854775807", Some(i64::MAX)),
            ("9223372036854775808", "9223372036854775808", None),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
                None,
            ),
            ("1e999999", "1e999999", None),
        ];
        for (text, display, int) in cases {
            let n = Number::parse(text).unwrap_or_else(|| panic!("{text} did not parse"));
            assert_eq!(n.to_string(), display, "{text}");
            assert_eq!(n.as_i64(), int, "{text}");
            assert_eq!(
                Number::parse(&n.to_string()).unwrap(),
                n,
                "{text} round trip"
            );
        }
    }

    #[test]
    fn malformed_text_is_not_a_number() {
        for text in [
            "",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "abc",
            "1.2.3",
            "0x10",
            "NaN",
            "1e9999999999999999999",
        ] {
            assert!(Number::parse(text).is_none(), "{text:?} parsed");
        }
    }

    #[test]
    fn floats_and_integers_compare_by_value() {
        assert_eq!(Number::from_f64(3.0).unwrap(), Number::from_i64(3));
        assert_eq!(
            Number::from_f64(0.5).unwrap(),
            Number::parse("0.5").unwrap()
        );
        assert_ne!(
            Number::from_f64(0.5).unwrap(),
            Number::parse("0.25").unwrap()
        );
        assert!(Number::from_f64(f64::NAN).is_none());
        assert!(!Number::from_f64(f64::INFINITY).unwrap().is_finite());
        assert_eq!(Number::from_u64(u64::MAX).to_string(), u64::MAX.to_string());
        // Integral floats beyond i64 are exact integers.
        let cases = [
            (18_446_744_073_709_551_616.0, "18446744073709551616"),
            (-1e20, "-100000000000000000000"),
            (
                f64::MAX,
                "179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368",
            ),
        ];
        for (value, text) in cases {
            let n = Number::from_f64(value).unwrap();
            assert_eq!(n.to_string(), text);
            assert_eq!(n, Number::parse(text).unwrap());
            assert!(n.is_integer());
        }
        assert_eq!(
            Number::from_u64(10_000_000_000_000_000_000).to_string(),
            "10000000000000000000"
        );
    }
}
