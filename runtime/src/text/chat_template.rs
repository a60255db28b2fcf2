//! The Jinja chat template of `tokenizer_config.json`, rendered the way transformers'
//! `apply_chat_template` renders it (spec §8).
//!
//! transformers compiles the template in an `ImmutableSandboxedEnvironment` with
//! `trim_blocks=True, lstrip_blocks=True`, the globals `raise_exception` and `strftime_now`, and a
//! `tojson` filter that is `json.dumps(x, ensure_ascii=False, ...)`; the context holds `messages`,
//! `add_generation_prompt`, `tools` and the special tokens. This module builds the same
//! environment with minijinja, adding Python string/dict methods through
//! `minijinja_contrib::pycompat` (plus `str.rsplit`, `str.removeprefix`, `str.removesuffix`).

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use concord_core::{Error, Result};
use minijinja::value::{from_args, Kwargs, ValueKind};
use minijinja::{context, Environment, ErrorKind, Output, State, Value};
use serde::{Deserialize, Serialize};

/// Name of the single template in the environment; appears in error messages.
const TEMPLATE_NAME: &str = "chat_template";

/// Template instructions one render may execute, plus [`FUEL_PER_MESSAGE`] per message: a
/// hostile `tokenizer_config.json` (`{% for i in range(99999) %}…` nested) fails with an
/// error instead of running for ever. DeepSeek-V3's template spends about 60 per message.
const FUEL_BASE: u64 = 1_000_000;
const FUEL_PER_MESSAGE: u64 = 10_000;
/// Nesting depth of macro calls, includes and blocks (minijinja's default is 500; templates
/// that matter need a handful, and deep frames cost native stack).
const RECURSION_LIMIT: usize = 100;

/// One message of a conversation, as the chat template sees it (a Python dict in transformers).
///
/// `content` is always present in the rendered dict (`none` when absent), so templates can test
/// `message['content'] is none`; `tool_calls` appears only when set, so `'tool_calls' in message`
/// behaves as for an OpenAI-style message. Any other key (`name`, `tool_call_id`, …) is kept in
/// `extra` and reaches the template unchanged.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text of the message; `None` for an assistant turn that only calls tools.
    #[serde(default)]
    pub content: Option<String>,
    /// OpenAI-style tool calls: `[{"type": "function", "function": {"name", "arguments"}}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    /// Every other key of the message.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ChatMessage {
    /// A message with text content and nothing else.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: Some(content.into()),
            ..Default::default()
        }
    }
    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// A compiled chat template with the BOS and EOS token strings it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("source_chars", &self.source.chars().count())
            .finish()
    }
}

impl ChatTemplate {
    /// Compiles `source`. A syntax error is [`Error::InvalidArgument`] with minijinja's message.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_unknown_method_callback(python_methods);
        env.set_formatter(python_formatter);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(template_error)?;
        Ok(ChatTemplate {
            env,
            source: source.to_owned(),
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// The Jinja source this template was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the conversation. `add_generation_prompt` asks the template to end with the
    /// assistant prefix (DeepSeek-V3: `<｜Assistant｜>`). Errors, including the template's own
    /// `raise_exception(msg)` and running out of fuel (a template that loops too long), are
    /// [`Error::InvalidArgument`] carrying the message.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        // The fuel is a setting of the environment: a cheap clone (templates are shared) per
        // render lets it grow with the conversation.
        let mut env = self.env.clone();
        let per_message = FUEL_PER_MESSAGE.saturating_mul(messages.len() as u64);
        env.set_fuel(Some(FUEL_BASE.saturating_add(per_message)));
        let template = env.get_template(TEMPLATE_NAME).map_err(template_error)?;
        template
            .render(context! {
                messages => Value::from_serialize(messages),
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
                tools => Value::from(()),
            })
            .map_err(template_error)
    }
}

fn template_error(err: minijinja::Error) -> Error {
    Error::invalid(format!("chat template: {err}"))
}

/// `raise_exception(msg)`: the template rejects its input.
fn raise_exception(msg: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// `strftime_now(fmt)`: the current time formatted like Python's `datetime.now().strftime`.
/// The time is UTC (no time-zone database is consulted).
fn strftime_now(fmt: String) -> std::result::Result<String, minijinja::Error> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    strftime(&fmt, secs)
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Formats the UTC time `unix_secs` with the C/Python `strftime` directives `%a %A %b %B %d %e %H
/// %I %j %m %M %p %S %y %Y %%`; glibc's `%-d`-style flag drops the zero padding.
fn strftime(fmt: &str, unix_secs: i64) -> std::result::Result<String, minijinja::Error> {
    let days = unix_secs.div_euclid(86_400);
    let secs_of_day = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        secs_of_day / 3600,
        (secs_of_day / 60) % 60,
        secs_of_day % 60,
    );
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
    const CUMULATIVE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let day_of_year =
        CUMULATIVE[month as usize - 1] + i64::from(day) + i64::from(month > 2 && is_leap(year));
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };

    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = chars.next();
        let unpadded = spec == Some('-');
        if unpadded {
            spec = chars.next();
        }
        let num = |out: &mut String, v: i64, width: usize| {
            if unpadded {
                let _ = write!(out, "{v}");
            } else {
                let _ = write!(out, "{v:0width$}");
            }
        };
        match spec {
            Some('a') => out.push_str(&WEEKDAYS[weekday][..3]),
            Some('A') => out.push_str(WEEKDAYS[weekday]),
            Some('b' | 'h') => out.push_str(&MONTHS[month as usize - 1][..3]),
            Some('B') => out.push_str(MONTHS[month as usize - 1]),
            Some('d') => num(&mut out, i64::from(day), 2),
            Some('e') => {
                let _ = write!(out, "{day:>2}");
            }
            Some('H') => num(&mut out, hour, 2),
            Some('I') => num(&mut out, hour12, 2),
            Some('j') => num(&mut out, day_of_year, 3),
            Some('m') => num(&mut out, i64::from(month), 2),
            Some('M') => num(&mut out, minute, 2),
            Some('p') => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            Some('S') => num(&mut out, second, 2),
            Some('y') => num(&mut out, year.rem_euclid(100), 2),
            Some('Y') => {
                let _ = write!(out, "{year}");
            }
            Some('%') => out.push('%'),
            other => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "strftime_now: unsupported directive %{}",
                        other.map(String::from).unwrap_or_default()
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Prints `{{ value }}` as Jinja2 does, i.e. with Python's `str()`: `True`, `None`,
/// `['a', 1]`, `{'k': 'v'}`; undefined prints nothing. (No auto-escaping: chat templates are
/// text.)
fn python_formatter(
    out: &mut Output,
    _state: &State,
    value: &Value,
) -> std::result::Result<(), minijinja::Error> {
    let text = match value.kind() {
        ValueKind::Undefined => return Ok(()),
        ValueKind::String => {
            return out
                .write_str(value.as_str().unwrap_or(""))
                .map_err(fmt_error)
        }
        _ => python_repr(value),
    };
    out.write_str(&text).map_err(fmt_error)
}

fn fmt_error(_: fmt::Error) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::WriteFailure, "formatting failed")
}

/// Python's `repr()` of a template value (`str()` differs only for top-level strings).
fn python_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".to_owned(),
        ValueKind::Bool => (if value.is_true() { "True" } else { "False" }).to_owned(),
        ValueKind::String => {
            let s = value.as_str().unwrap_or("");
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::with_capacity(s.len() + 2);
            out.push(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        ValueKind::Seq | ValueKind::Iterable => match value.try_iter() {
            Ok(items) => {
                let items: Vec<String> = items.map(|v| python_repr(&v)).collect();
                format!("[{}]", items.join(", "))
            }
            Err(_) => value.to_string(),
        },
        ValueKind::Map => match value.try_iter() {
            Ok(keys) => {
                let items: Vec<String> = keys
                    .map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        format!("{}: {}", python_repr(&k), python_repr(&v))
                    })
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            Err(_) => value.to_string(),
        },
        _ => value.to_string(),
    }
}

/// Python methods on values: `str.rsplit`, `str.removeprefix` and `str.removesuffix` here, the
/// rest (`startswith`, `split`, `strip`, `dict.items`, …) from `minijinja_contrib::pycompat`.
fn python_methods(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> std::result::Result<Value, minijinja::Error> {
    if let Some(s) = value.as_str() {
        match method {
            "rsplit" => {
                let (sep, maxsplit): (Option<&str>, Option<i64>) = from_args(args)?;
                return rsplit(s, sep, maxsplit).map(Value::from);
            }
            "removeprefix" => {
                let (prefix,): (&str,) = from_args(args)?;
                return Ok(Value::from(s.strip_prefix(prefix).unwrap_or(s)));
            }
            "removesuffix" => {
                let (suffix,): (&str,) = from_args(args)?;
                return Ok(Value::from(s.strip_suffix(suffix).unwrap_or(s)));
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Python's `str.rsplit(sep=None, maxsplit=-1)`.
fn rsplit(
    s: &str,
    sep: Option<&str>,
    maxsplit: Option<i64>,
) -> std::result::Result<Vec<String>, minijinja::Error> {
    let limit = maxsplit
        .filter(|&n| n >= 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut parts: Vec<&str> = match sep {
        Some("") => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "rsplit: empty separator",
            ))
        }
        Some(sep) => match limit {
            None => {
                let mut v: Vec<&str> = s.split(sep).collect();
                v.reverse();
                v
            }
            Some(n) => s.rsplitn(n.saturating_add(1), sep).collect(),
        },
        None => {
            // Runs of whitespace separate; leading and trailing whitespace is dropped except
            // for the unsplit remainder's leading whitespace once `maxsplit` is reached.
            let mut v = Vec::new();
            let mut rest = s;
            let mut splits = 0usize;
            loop {
                rest = rest.trim_end();
                if rest.is_empty() {
                    break;
                }
                if Some(splits) == limit {
                    v.push(rest);
                    break;
                }
                match rest.char_indices().rev().find(|(_, c)| c.is_whitespace()) {
                    Some((pos, c)) => {
                        v.push(&rest[pos + c.len_utf8()..]);
                        rest = &rest[..pos];
                        splits += 1;
                    }
                    None => {
                        v.push(rest);
                        break;
                    }
                }
            }
            v
        }
    };
    parts.reverse();
    Ok(parts.into_iter().map(str::to_owned).collect())
}

/// How `json.dumps` lays out its output.
struct JsonStyle {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    ensure_ascii: bool,
    sort_keys: bool,
}

/// transformers' `tojson` filter: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, i.e. no HTML escaping, `", "`/`": "` separators, and
/// keys in the order the value holds them.
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_owned(),
            None => {
                let n = v.as_i64().ok_or_else(|| {
                    minijinja::Error::new(ErrorKind::InvalidOperation, "tojson: bad indent")
                })?;
                " ".repeat(usize::try_from(n).unwrap_or(0))
            }
        }),
    };
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match separators {
        Some(s) if s.len() == 2 => (s[0].clone(), s[1].clone()),
        Some(_) => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "tojson: separators must be a pair",
            ))
        }
        None if indent.is_some() => (",".to_owned(), ": ".to_owned()),
        None => (", ".to_owned(), ": ".to_owned()),
    };
    let style = JsonStyle {
        indent,
        item_sep,
        key_sep,
        ensure_ascii,
        sort_keys,
    };
    let mut out = String::new();
    write_json(&mut out, value, &style, 0)?;
    Ok(Value::from(out))
}

fn write_json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    if !ensure_ascii {
        out.push_str(&quoted);
        return;
    }
    for c in quoted.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
}

fn newline_indent(out: &mut String, style: &JsonStyle, depth: usize) {
    if let Some(indent) = &style.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
}

fn write_json(
    out: &mut String,
    value: &Value,
    style: &JsonStyle,
    depth: usize,
) -> std::result::Result<(), minijinja::Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if value.is_integer() {
                let _ = write!(out, "{value}");
            } else {
                let f = f64::try_from(value.clone())?;
                if f.is_nan() {
                    out.push_str("NaN");
                } else if f.is_infinite() {
                    out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    let n = serde_json::Number::from_f64(f).ok_or_else(|| {
                        minijinja::Error::new(ErrorKind::InvalidOperation, "tojson: bad float")
                    })?;
                    let _ = write!(out, "{n}");
                }
            }
        }
        ValueKind::String => write_json_str(out, value.as_str().unwrap_or(""), style.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline_indent(out, style, depth + 1);
                write_json(out, item, style, depth + 1)?;
            }
            newline_indent(out, style, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if style.sort_keys {
                keys.sort_by_key(|k| k.to_string());
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline_indent(out, style, depth + 1);
                let key_text = match key.kind() {
                    ValueKind::String => key.as_str().unwrap_or("").to_owned(),
                    ValueKind::None => "null".to_owned(),
                    ValueKind::Bool => (if key.is_true() { "true" } else { "false" }).to_owned(),
                    _ => key.to_string(),
                };
                write_json_str(out, &key_text, style.ensure_ascii);
                out.push_str(&style.key_sep);
                write_json(out, &value.get_item(key)?, style, depth + 1)?;
            }
            newline_indent(out, style, depth);
            out.push('}');
        }
        kind => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: a {kind} is not JSON serializable"),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_matches_python() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(
            strftime("%Y-%m-%d %H:%M:%S", t).unwrap(),
            "2024-02-29 13:05:09"
        );
        assert_eq!(strftime("%d %b %Y", t).unwrap(), "29 Feb 2024");
        assert_eq!(
            strftime("%A %B %-d, %y %I%p %j %%", t).unwrap(),
            "Thursday February 29, 24 01PM 060 %"
        );
        assert_eq!(strftime("%a %e", 0).unwrap(), "Thu  1");
        assert!(strftime("%Q", 0).is_err());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }

    #[test]
    fn rsplit_matches_python() {
        let v = |s: &str, sep: Option<&str>, n: Option<i64>| rsplit(s, sep, n).unwrap();
        assert_eq!(v("a,b,c", Some(","), None), ["a", "b", "c"]);
        assert_eq!(v("a,b,c", Some(","), Some(1)), ["a,b", "c"]);
        assert_eq!(v("a,b,c", Some(","), Some(-1)), ["a", "b", "c"]);
        assert_eq!(v(",a,", Some(","), None), ["", "a", ""]);
        assert_eq!(v("  a b  c ", None, None), ["a", "b", "c"]);
        assert_eq!(v("  a b", None, Some(1)), ["  a", "b"]);
        assert_eq!(v("  a b", None, Some(5)), ["a", "b"]);
        assert_eq!(v("a b  c", None, Some(1)), ["a b", "c"]);
        assert_eq!(v("   ", None, None), Vec::<String>::new());
        assert!(rsplit("a", Some(""), None).is_err());
    }
}
