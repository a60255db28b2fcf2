//! Tolerant field access on `config.json` objects, with errors naming the source and the field.

use concord_core::{Error, Result};
use serde_json::{Map, Value};

/// A JSON object plus the name of the file (or `<string>`) it came from.
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) src: &'a str,
    /// Prefix for nested objects (`rope_scaling.`).
    pub(crate) prefix: &'static str,
}

/// What a key holds.
pub(crate) enum Field<'a> {
    Absent,
    Null,
    Val(&'a Value),
}

impl<'a> Obj<'a> {
    pub(crate) fn get(&self, key: &str) -> Field<'a> {
        match self.map.get(key) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(v) => Field::Val(v),
        }
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        !matches!(self.get(key), Field::Absent)
    }

    pub(crate) fn err(&self, key: &str, what: &str, v: &Value) -> Error {
        Error::model(format!(
            "{}: field `{}{}`: expected {what}, found {v}",
            self.src, self.prefix, key
        ))
    }

    pub(crate) fn to_usize(&self, key: &str, v: &Value) -> Result<usize> {
        if let Some(u) = v.as_u64() {
            return usize::try_from(u).map_err(|_| self.err(key, "an integer that fits usize", v));
        }
        match v.as_f64() {
            Some(f)
                if f.is_finite()
                    && f >= 0.0
                    && f.fract() == 0.0
                    && f < 9.007_199_254_740_992e15 =>
            {
                Ok(f as usize)
            }
            _ => Err(self.err(key, "a non-negative integer", v)),
        }
    }

    pub(crate) fn to_f64(&self, key: &str, v: &Value) -> Result<f64> {
        v.as_f64().ok_or_else(|| self.err(key, "a number", v))
    }

    /// Optional integer: absent → `absent`, null → `None`.
    pub(crate) fn opt_usize(&self, key: &str, absent: Option<usize>) -> Result<Option<usize>> {
        match self.get(key) {
            Field::Absent => Ok(absent),
            Field::Null => Ok(None),
            Field::Val(v) => self.to_usize(key, v).map(Some),
        }
    }

    /// Integer: absent or null → `default`.
    pub(crate) fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        Ok(self.opt_usize(key, Some(default))?.unwrap_or(default))
    }

    /// Optional number: absent or null → `None`.
    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            Field::Absent | Field::Null => Ok(None),
            Field::Val(v) => self.to_f64(key, v).map(Some),
        }
    }

    pub(crate) fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    pub(crate) fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            Field::Absent | Field::Null => Ok(default),
            Field::Val(Value::Bool(b)) => Ok(*b),
            // Tolerate 0/1.
            Field::Val(v) if v.as_u64() == Some(0) => Ok(false),
            Field::Val(v) if v.as_u64() == Some(1) => Ok(true),
            Field::Val(v) => Err(self.err(key, "a boolean", v)),
        }
    }

    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            Field::Absent | Field::Null => Ok(None),
            Field::Val(Value::String(s)) => Ok(Some(s.clone())),
            Field::Val(v) => Err(self.err(key, "a string", v)),
        }
    }

    pub(crate) fn token_id(&self, key: &str, v: &Value) -> Result<u32> {
        let u = self.to_usize(key, v)?;
        u32::try_from(u).map_err(|_| self.err(key, "a token id below 2^32", v))
    }
}
