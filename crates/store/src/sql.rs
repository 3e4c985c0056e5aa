//! Small helpers for the runtime queries that run unchanged on both backends
//! (`$n` placeholders, `ON CONFLICT ... DO UPDATE`, `LIKE ... ESCAPE`).

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use crate::Backend;

/// One bound value of a dynamically built query.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I(i64),
    S(String),
    OS(Option<String>),
    OF(Option<f64>),
}

/// A query under construction: SQL text plus its arguments, `$n` numbered.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Appends raw SQL.
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Appends a placeholder bound to `a`.
    pub fn arg(&mut self, a: Arg) -> &mut Self {
        self.args.push(a);
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// The sqlx query, arguments bound. On SQLite the numbered placeholders
    /// become plain `?`: SQLite finds a named or numbered parameter by a
    /// linear search (`sqlite3_bind_parameter_name`), which makes binding a
    /// statement with N `$n` parameters O(N²) — a third of the time of a
    /// 500-event batch before this. `arg()` numbers placeholders in text
    /// order, so positions and numbers agree.
    pub fn query(self, backend: Backend) -> Query<'static, Any, AnyArguments> {
        let text = match backend {
            Backend::Postgres => self.text,
            Backend::Sqlite => positional(&self.text),
        };
        bind_all(sqlx::query(sqlx::AssertSqlSafe(text)), self.args)
    }
}

/// `$1 ... $n` (in order) → `?`. Our SQL has no `$` inside string literals.
fn positional(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut expect = 1usize;
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n * 10 + d as usize;
                chars.next();
            }
            debug_assert_eq!(n, expect, "placeholders out of order in {text}");
            expect += 1;
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Chunk lengths for `len` rows: powers of two up to `max` (a power of two),
/// so that a handful of distinct statements serve every batch and stay in
/// the per-connection statement cache.
pub(crate) fn pow2_chunks(mut len: usize, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    while len > 0 {
        let c = if len >= max {
            max
        } else {
            1 << (usize::BITS - 1 - len.leading_zeros())
        };
        out.push(c);
        len -= c;
    }
    out
}

fn bind_all(
    mut q: Query<'static, Any, AnyArguments>,
    args: Vec<Arg>,
) -> Query<'static, Any, AnyArguments> {
    for a in args {
        q = match a {
            Arg::I(v) => q.bind(v),
            Arg::S(v) => q.bind(clean_owned(v)),
            Arg::OS(v) => q.bind(v.map(clean_owned)),
            // sqlx 0.9's `Any` driver turns a NULL of type f64 into a
            // PostgreSQL float4 NULL and a NULL f32 into float8 (its Real
            // and Double are swapped in AnyArguments::convert_into). A
            // statement first prepared with a float4 NULL then refuses every
            // f64 on that connection. A missing value is therefore bound as
            // `Option<f32>::None`, which arrives as float8 like the present
            // values (test `null_then_present_spam_scores` guards this).
            Arg::OF(Some(v)) => q.bind(v),
            Arg::OF(None) => q.bind(Option::<f32>::None),
        };
    }
    q
}

fn clean_owned(s: String) -> String {
    if s.contains('\0') {
        clean(&s)
    } else {
        s
    }
}

/// Text as stored: NUL characters (which PostgreSQL's TEXT cannot hold, and
/// which only come from hostile input) become U+FFFD on both backends.
pub(crate) fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_string()
    }
}

/// `%text%` for `LIKE ... ESCAPE '\'`, with `%`, `_` and `\` in `text` taken literally.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Saturating u64 → i64 for BIGINT columns.
pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Non-negative i64 → u64 (negative values, which the store never writes, read as 0).
pub(crate) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// `($1,$2,...),(...)` for `rows` rows of `cols` columns, numbering from `first`.
pub(crate) fn values_list(rows: usize, cols: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&n.to_string());
            n += 1;
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_values() {
        assert_eq!(contains_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
        assert_eq!(values_list(2, 2, 1), "($1,$2),($3,$4)");
        let mut q = Sql::new("SELECT 1 WHERE a = ");
        q.arg(Arg::I(1)).push(" AND b = ").arg(Arg::S("x".into()));
        assert_eq!(q.text, "SELECT 1 WHERE a = $1 AND b = $2");
        assert_eq!(positional(&q.text), "SELECT 1 WHERE a = ? AND b = ?");
        assert_eq!(positional("VALUES ($1,$2),($3,$4)"), "VALUES (?,?),(?,?)");
        assert_eq!(pow2_chunks(200, 64), [64, 64, 64, 8]);
        assert_eq!(pow2_chunks(5, 64), [4, 1]);
        assert!(pow2_chunks(0, 64).is_empty());
    }
}
