//! serde Deserializer over [`ConfigValue`] with located errors. (Being written: see the config helper.)
use super::ConfigValue;
use crate::diagnostic::Diagnostic;
use serde::de::DeserializeOwned;

/// Deserialises a config tree into `T`; errors name the location and the key path.
pub fn from_config<T: DeserializeOwned>(value: &ConfigValue) -> Result<T, Diagnostic> {
    let _ = value;
    Err(Diagnostic::new("config deserializer not implemented yet"))
}
