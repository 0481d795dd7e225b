//! Whole numbers in snapshots, read as JSON Schema reads them: `5119.0` is
//! the integer 5119 there (and what Python's `json` writes for a float that
//! holds one), while serde alone refuses it for a `u32`. A fraction, a sign
//! or a value too large for the field is still refused.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, Error, Unexpected, Visitor};
use serde::Deserialize;

/// For `#[serde(deserialize_with = "crate::whole::exact")]`.
pub(crate) fn exact<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(WholeVisitor(PhantomData))
}

/// As [`exact`], for an optional field (with `#[serde(default)]`).
pub(crate) fn optional<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Whole<T>>::deserialize(d).map(|w| w.map(|Whole(v)| v))
}

struct Whole<T>(T);

impl<'de, T: TryFrom<u64>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        exact(d).map(Whole)
    }
}

struct WholeVisitor<T>(PhantomData<T>);

impl<T: TryFrom<u64>> Visitor<'_> for WholeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a whole number that fits {}", std::any::type_name::<T>())
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
        let unsigned =
            u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))?;
        self.visit_u64(unsigned)
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
        // 2^64 is the first f64 past u64::MAX; every f64 below it that is
        // whole converts exactly.
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            self.visit_u64(v as u64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "exact")]
        small: u32,
        #[serde(default, deserialize_with = "optional")]
        maybe: Option<u64>,
    }

    fn read(json: &str) -> Result<Sample, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_are_read_however_written() {
        let s = read(r#"{"small": 5119.0, "maybe": 1e3}"#).unwrap();
        assert_eq!((s.small, s.maybe), (5119, Some(1000)));
        let s = read(r#"{"small": 7}"#).unwrap();
        assert_eq!((s.small, s.maybe), (7, None));
        let s = read(r#"{"small": 7, "maybe": null}"#).unwrap();
        assert_eq!(s.maybe, None);
        let s = read(r#"{"small": 0, "maybe": 18446744073709551615}"#).unwrap();
        assert_eq!(s.maybe, Some(u64::MAX));
    }

    #[test]
    fn fractions_signs_and_overflow_are_refused_saying_why() {
        for (json, said) in [
            (r#"{"small": 1.5}"#, "floating point `1.5`"),
            (r#"{"small": -1}"#, "integer `-1`"),
            (r#"{"small": -1.0}"#, "floating point `-1.0`"),
            (r#"{"small": 4294967296}"#, "integer `4294967296`"),
            (r#"{"small": 1e300}"#, "floating point"),
            (r#"{"small": "12"}"#, "string \"12\""),
            (
                r#"{"small": 1, "maybe": 18446744073709551616.0}"#,
                "floating point",
            ),
        ] {
            let e = read(json).unwrap_err();
            assert!(
                e.contains(said) && e.contains("a whole number that fits"),
                "{json}: {e}"
            );
        }
    }
}
