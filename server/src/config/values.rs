//! How the settings whose text needs more than serde's own reading are
//! read, the same from every layer: the file, the environment (where every
//! value is text) and the flags (serialized by clap's typed values).

use std::fmt;
use std::net::SocketAddr;

use secrecy::SecretString;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

use crate::store::DatabaseUrl;

/// `listen`: `IP:PORT` or `localhost:PORT`.
pub fn listen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    super::parse_listen(&text).map_err(de::Error::custom)
}

/// `database`: a file path, `sqlite://path` or `postgres://…`. A URL that
/// is refused is shown without its password.
pub fn database<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DatabaseUrl, D::Error> {
    let text =
        deserializer.deserialize_str(SecretText("a file path, sqlite://path or postgres://…"))?;
    text.parse()
        .map_err(|e| de::Error::custom(format!("{:?}: {e}", crate::store::redact_url(&text))))
}

/// A secret: text only, and a value of another type is refused without
/// being repeated (serde's usual message would quote it).
pub fn secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    let text = deserializer.deserialize_str(SecretText("a text (the value is not shown)"))?;
    Ok(Some(SecretString::from(text)))
}

/// A list of names (host names, action kinds): a list in the file, or one
/// text with the names separated by commas (the environment, or the file
/// for short).
pub fn comma_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Names;
    impl<'de> Visitor<'de> for Names {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of names, or names separated by commas")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<String>, E> {
            Ok(text
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut names = Vec::new();
            while let Some(name) = seq.next_element()? {
                names.push(name);
            }
            Ok(names)
        }
    }
    deserializer.deserialize_any(Names)
}

/// Text whose value must not appear in an error.
struct SecretText(&'static str);

impl SecretText {
    fn refuse<E: de::Error>(&self, kind: &str) -> E {
        E::custom(format!("found {kind}, expected {}", self.0))
    }
}

impl<'de> Visitor<'de> for SecretText {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<String, E> {
        Err(self.refuse("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
        Err(self.refuse("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
        Err(self.refuse("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
        Err(self.refuse("a number"))
    }
    fn visit_char<E: de::Error>(self, _: char) -> Result<String, E> {
        Err(self.refuse("a character"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self.refuse("a list"))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self.refuse("a table"))
    }
}

/// A flag's typed value (a duration, an address) as the text the settings
/// read; clap already checked it. Only called for `Some`: the flags that
/// were not given are skipped.
pub fn as_text<T: fmt::Display, S: Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

/// A secret flag, handed to the layering (in memory only) as its text.
pub fn expose<S: Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    match value {
        Some(secret) => serializer.serialize_str(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

/// `--no-agent`: the flag that turns `embedded_agent` off.
pub fn negated<S: Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(!value)
}

/// A secret flag as clap reads it.
pub fn parse_secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text))
}
