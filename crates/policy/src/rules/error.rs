//! Config errors: each names the key path it is about
//! (`policy.rules[3].match.body.regex[0]`) and, when the config text is
//! known, the line.

use std::fmt;

/// What is wrong at a key path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The text is not TOML.
    #[error("TOML syntax: {0}")]
    Syntax(String),
    /// A key the config does not know (typo?).
    #[error("unknown key `{key}`, expected {expected}")]
    UnknownKey { key: String, expected: String },
    /// A required key is missing.
    #[error("missing key `{0}`")]
    Missing(&'static str),
    /// A value of the wrong type or shape (the deserializer's words).
    #[error("{0}")]
    Shape(String),
    /// A regular expression does not compile.
    #[error("{0}")]
    Regex(String),
    /// A name is used twice (rule, list, policy).
    #[error("duplicate name `{0}`")]
    Duplicate(String),
    /// A reference to something that is not defined.
    #[error("unknown {what} `{name}`")]
    Unknown { what: &'static str, name: String },
    /// Any other invalid value, with the reason.
    #[error("{0}")]
    Invalid(String),
    /// A size or resource limit of the compiled policy.
    #[error("limit exceeded: {0}")]
    Limit(String),
}

/// One config error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path (`policy.rules[3].match.body.regex[0]`); empty for the
    /// whole document.
    pub path: String,
    /// 1-based line of the key in the config text, when known.
    pub line: Option<usize>,
    pub kind: ErrorKind,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, kind: ErrorKind) -> ConfigError {
        ConfigError {
            path: path.into(),
            line: None,
            kind,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        ConfigError::new(path, ErrorKind::Invalid(msg.into()))
    }
}

impl fmt::Display for ConfigError {
    /// `line 12: policy.rules[3].match.body.regex[0]: unclosed group`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.path, self.kind)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Formats errors one per line (for `mxguard config check`).
pub fn format_errors(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The 1-based line of `path` in TOML `text` (the key, or the nearest
/// enclosing key found), `None` when the text does not parse. `path` is
/// relative to the document root (`policy.rules[3].match`). Linear in the
/// text.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    use toml_edit::{Item, TableLike, Value};
    enum Cur<'a> {
        Item(&'a Item),
        Table(&'a dyn TableLike),
        Value(&'a Value),
    }
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut cur = Cur::Item(doc.as_item());
    let mut best: Option<usize> = None;
    for seg in split_path(path) {
        if let Cur::Item(Item::Value(v)) = cur {
            cur = Cur::Value(v);
        }
        let next = match (seg, cur) {
            (Seg::Key(k), c) => {
                let table: Option<&dyn TableLike> = match c {
                    Cur::Item(i) => i.as_table_like(),
                    Cur::Table(t) => Some(t),
                    Cur::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
                };
                match table.and_then(|t| t.get_key_value(k)) {
                    Some((key, item)) => {
                        if let Some(span) = key.span() {
                            best = Some(span.start);
                        }
                        Some(Cur::Item(item))
                    }
                    None => None,
                }
            }
            (Seg::Index(i), Cur::Item(Item::ArrayOfTables(a))) => a.get(i).map(|t| {
                if let Some(span) = t.span() {
                    best = Some(span.start);
                }
                Cur::Table(t as &dyn TableLike)
            }),
            (Seg::Index(i), Cur::Value(Value::Array(a))) => a.get(i).map(|v| {
                if let Some(span) = v.span() {
                    best = Some(span.start);
                }
                Cur::Value(v)
            }),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    best.map(|off| memchr::memchr_iter(b'\n', &text.as_bytes()[..off.min(text.len())]).count() + 1)
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        if !rest.is_empty() {
            for idx in format!("[{rest}").split('[').filter(|s| !s.is_empty()) {
                if let Ok(i) = idx.trim_end_matches(']').parse() {
                    out.push(Seg::Index(i));
                }
            }
        }
    }
    out
}
