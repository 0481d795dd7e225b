//! The layering of [`Settings`] with figment: the struct's `Default`, then
//! the TOML file, then the environment, then the flags; and errors that
//! say which setting, from which layer (and line of the file) and what was
//! expected.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::{Cli, Settings, DEFAULT_CONFIG_FILE};
use crate::store::DatabaseUrl;

/// Every layer merged over the defaults, not yet checked for range.
pub(super) fn merge(cli: &Cli, env: &dyn Fn(&str) -> Option<OsString>) -> anyhow::Result<Settings> {
    let keys = setting_keys();
    let mut figment = Figment::new();
    if let Some(file) = ConfigFile::find(cli.config.as_deref(), keys)? {
        figment = figment.merge(file.provider());
    }
    let figment = figment.merge(environment(keys, env)?).merge(Named {
        inner: Serialized::defaults(cli),
        metadata: Metadata::named("flags").interpolater(|_: &Profile, k: &[&str]| {
            format!("the flag --{}", k.join(".").replace('_', "-"))
        }),
    });
    // Lossy: the environment gives every value as text, "10" for a number
    // and "true" or "1" for a yes.
    let mut settings: Settings = figment.extract_lossy().map_err(explain)?;
    if !figment.contains("database") {
        settings.database = DatabaseUrl::Sqlite(settings.data_dir.join("procmon.db"));
    }
    Ok(settings)
}

/// The settings' keys in the struct's order, as serde names them: the one
/// list that the file, the environment and the messages go by.
pub(super) fn setting_keys() -> &'static [&'static str] {
    /// A deserializer that only notes the fields a struct asks for.
    struct FieldNames<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields noted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    // The error is the deserializer's way of stopping once it has the names.
    let _ = Settings::deserialize(FieldNames(&mut fields));
    fields
}

/// The config file as read, with the line of each of its keys.
struct ConfigFile {
    path: PathBuf,
    text: String,
    lines: Arc<BTreeMap<String, usize>>,
}

impl ConfigFile {
    /// The file `--config` names (which must exist), else the default
    /// file if it exists, else none.
    fn find(path: Option<&Path>, keys: &[&str]) -> anyhow::Result<Option<Self>> {
        match path {
            Some(path) => Self::read(path, keys).map(Some),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                Self::read(Path::new(DEFAULT_CONFIG_FILE), keys).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Reads and parses the file, refusing it with every unknown key named
    /// at once (serde would name only the first).
    fn read(path: &Path, keys: &[&str]) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let invalid = || format!("invalid config file {}", path.display());
        // toml's own message quotes the line, which may hold a secret: only
        // its position and what is wrong are shown.
        let table: BTreeMap<toml::Spanned<String>, toml::Value> =
            toml::from_str(&text).map_err(|e| {
                let at = match e.span() {
                    Some(span) => {
                        let before = &text[..span.start];
                        let line = before.matches('\n').count() + 1;
                        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                        format!("line {line}, column {column}: ")
                    }
                    None => String::new(),
                };
                anyhow::anyhow!("{}: {at}{}", invalid(), e.message().trim_end())
            })?;
        let lines: BTreeMap<String, usize> = table
            .keys()
            .map(|key| {
                let line = text[..key.span().start].matches('\n').count() + 1;
                (key.get_ref().clone(), line)
            })
            .collect();
        let unknown: Vec<(&str, usize)> = lines
            .iter()
            .filter(|(key, _)| !keys.contains(&key.as_str()))
            .map(|(key, line)| (key.as_str(), *line))
            .collect();
        if !unknown.is_empty() {
            let names: Vec<&str> = unknown.iter().map(|(key, _)| *key).collect();
            let at: Vec<String> = unknown.iter().map(|(_, line)| line.to_string()).collect();
            anyhow::bail!(
                "{}: unknown key{} {} (line{} {}); the known keys are {}",
                invalid(),
                if unknown.len() == 1 { "" } else { "s" },
                names.join(", "),
                if unknown.len() == 1 { "" } else { "s" },
                at.join(", "),
                keys.join(", ")
            );
        }
        Ok(Self {
            path: path.to_owned(),
            text,
            lines: Arc::new(lines),
        })
    }

    /// The file as a layer whose messages give its path and the key's line.
    fn provider(self) -> Named<figment::providers::Data<Toml>> {
        let (path, lines) = (self.path.display().to_string(), self.lines);
        Named {
            inner: Toml::string(&self.text),
            metadata: Metadata::from("config file", self.path.as_path()).interpolater(
                move |_: &Profile, k: &[&str]| match k.first().and_then(|key| lines.get(*key)) {
                    Some(line) => format!("the config file {path}, line {line}"),
                    None => format!("the config file {path}"),
                },
            ),
        }
    }
}

/// The environment layer: `PROCMON_` and the key in capitals, for each
/// setting. Its values stay text for the settings to read (figment's own
/// `Env` would guess types first: a token of digits would become a number,
/// losing leading zeros), and only the settings' names are looked up, so
/// other `PROCMON_*` variables (the agent's, the tests') are no concern.
fn environment(
    keys: &[&str],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> anyhow::Result<Named<Serialized<Dict>>> {
    let mut dict = Dict::new();
    for key in keys {
        let name = env_name(key);
        let Some(value) = env(&name) else { continue };
        let value = value.into_string().map_err(|_| {
            anyhow::anyhow!("{key} in the environment variable {name}: expected UTF-8 text")
        })?;
        // An empty variable counts as unset, as it did when clap read them.
        if !value.is_empty() {
            dict.insert((*key).to_owned(), Value::from(value));
        }
    }
    Ok(Named {
        inner: Serialized::defaults(dict),
        metadata: Metadata::named("environment").interpolater(|_: &Profile, k: &[&str]| {
            format!("the environment variable {}", env_name(&k.join("_")))
        }),
    })
}

/// A setting's environment variable.
pub(super) fn env_name(key: &str) -> String {
    format!("PROCMON_{}", key.to_ascii_uppercase())
}

/// A layer under a name of ours, which the messages show.
struct Named<P> {
    inner: P,
    metadata: Metadata,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

/// What figment found wrong, as "KEY in LAYER: what was expected".
fn explain(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            match &error.metadata {
                Some(metadata) => {
                    let profile = error.profile.clone().unwrap_or_default();
                    let layer = metadata.interpolate(&profile, &error.path);
                    format!("{key} in {layer}: {}", error.kind)
                }
                None => format!("{key}: {}", error.kind),
            }
        })
        .collect();
    anyhow::anyhow!("invalid settings: {}", lines.join("; "))
}
