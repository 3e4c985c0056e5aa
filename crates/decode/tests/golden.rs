//! Golden corpus: every file under `tests/corpus/<origin>/` that has a sidecar
//! `<file>.expect` is decoded and checked against it. Adding a case is adding
//! two files. Messages (`.eml`, `.mbox`) run twice: with LF and with CRLF line ends.
//!
//! `.expect` lines (`#` starts a comment):
//! - `object LOCATION [type=T] [name=N] [declared=D] [contains=TEXT] [text=TEXT] [link=HREF]`:
//!   an object at LOCATION (escapes allowed: `\s` for a space, `\x01`; `<input>` is
//!   the input itself) exists with these
//!   properties. `contains` is matched in the bytes (`\xNN`, `\n` escapes);
//!   `text` in the decoded text (the test decodes with text on); `link` among its links.
//! - `finding NAME [at LOCATION]`: such a finding was reported.
//! - `no-finding NAME`: no finding with this name (or prefix ending in `.`).
//! - `no-findings`: nothing reported at all.
//! - `objects N`: exactly N objects (the input included); `objects >= N` also works.
//! - `budget KEY=VALUE`: changes the budget for this case (`max_depth`,
//!   `max_objects`, `max_object_size`, `max_total_size`, `max_ratio`, `max_time_ms`).
//! - `only lf` / `only crlf`: for messages, run one line-end form only.

use mxguard_decode::{DecodeOptions, Decoded, Decoder};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "expect") {
            out.push(p.with_extension(""));
        }
    }
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                }
                b'r' => {
                    out.push(b'\r');
                    i += 2;
                }
                b's' => {
                    out.push(b' ');
                    i += 2;
                }
                b'x' if i + 3 < b.len() => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 4;
                }
                c => {
                    out.push(c);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 20);
    for (i, &c) in data.iter().enumerate() {
        if c == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

fn to_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for (i, &c) in data.iter().enumerate() {
        if c == b'\r' && data.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(c);
    }
    out
}

fn check(case: &Path, input: &[u8], expect: &str, variant: &str) -> Result<(), String> {
    let mut opts = DecodeOptions {
        text: true,
        ..Default::default()
    };
    for line in expect.lines() {
        let line = line.trim();
        if let Some(kv) = line.strip_prefix("budget ") {
            let (k, v) = kv.split_once('=').ok_or("budget needs KEY=VALUE")?;
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| format!("bad number in {line}"))?;
            let b = &mut opts.budget;
            match k.trim() {
                "max_depth" => b.max_depth = n as u32,
                "max_objects" => b.max_objects = n as usize,
                "max_object_size" => b.max_object_size = n,
                "max_total_size" => b.max_total_size = n,
                "max_ratio" => b.max_ratio = n,
                "max_time_ms" => b.max_time = Duration::from_millis(n),
                other => return Err(format!("unknown budget key {other}")),
            }
        }
    }
    let d: Decoded = Decoder::new(opts).decode(input);
    let dump = || {
        let mut s = String::new();
        for o in &d.objects {
            s.push_str(&format!(
                "  object {} type={} name={:?} declared={:?} size={} links={:?}\n",
                if o.location.is_empty() {
                    "<input>"
                } else {
                    &o.location
                },
                o.file_type.name(),
                o.name,
                o.declared_type,
                o.data.len(),
                o.links.iter().map(|l| &l.href).collect::<Vec<_>>()
            ));
        }
        for f in &d.findings {
            s.push_str(&format!(
                "  finding {} at {:?}: {}\n",
                f.name, f.location, f.detail
            ));
        }
        s
    };
    let fail = |msg: String| Err(format!("{} [{variant}]: {msg}\n{}", case.display(), dump()));
    for line in expect.lines() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with("budget ")
            || line.starts_with("only ")
        {
            continue;
        }
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        match verb {
            "object" => {
                let mut parts = rest.split(' ');
                let loc = parts.next().unwrap_or("");
                // Locations may hold spaces and bytes written as escapes (`\s`, `\x01`).
                let loc = if loc == "<input>" {
                    String::new()
                } else {
                    String::from_utf8_lossy(&unescape(loc)).into_owned()
                };
                let loc = loc.as_str();
                let props: Vec<(&'static str, String)> = {
                    // Values may contain spaces: a key=value runs to the next " key=".
                    let tail: Vec<&str> = parts.collect();
                    let tail = tail.join(" ");
                    let mut v = Vec::new();
                    let mut cur: Option<(&'static str, String)> = None;
                    for tok in tail.split(' ').filter(|t| !t.is_empty()) {
                        let key = tok.split_once('=').and_then(|(k, _)| {
                            ["type", "name", "declared", "contains", "text", "link"]
                                .into_iter()
                                .find(|c| *c == k)
                        });
                        if let Some(k) = key {
                            if let Some(c) = cur.take() {
                                v.push(c);
                            }
                            cur = Some((k, tok[k.len() + 1..].to_string()));
                        } else if let Some((_, val)) = cur.as_mut() {
                            val.push(' ');
                            val.push_str(tok);
                        } else {
                            return fail(format!("bad token {tok} in {line}"));
                        }
                    }
                    v.extend(cur);
                    v
                };
                let found = d.objects.iter().any(|o| {
                    o.location == loc
                        && props.iter().all(|(k, v)| match *k {
                            "type" => o.file_type.name() == v,
                            "name" => o.name.as_deref() == Some(v.as_str()),
                            "declared" => o.declared_type.as_deref() == Some(v.as_str()),
                            "contains" => memchr::memmem::find(&o.data, &unescape(v)).is_some(),
                            "text" => o.text.as_deref().is_some_and(|t| t.contains(v.as_str())),
                            "link" => o.links.iter().any(|l| &l.href == v),
                            _ => false,
                        })
                });
                if !found {
                    return fail(format!("no object matches `{line}`"));
                }
            }
            "finding" => {
                let (name, at) = match rest.split_once(" at ") {
                    Some((n, a)) => (
                        n.trim(),
                        Some(if a.trim() == "<input>" { "" } else { a.trim() }),
                    ),
                    None => (rest.trim(), None),
                };
                if !d
                    .findings
                    .iter()
                    .any(|f| f.name == name && at.is_none_or(|a| f.location == a))
                {
                    return fail(format!("missing `{line}`"));
                }
            }
            "no-finding" => {
                let name = rest.trim();
                if let Some(f) = d
                    .findings
                    .iter()
                    .find(|f| f.name == name || (name.ends_with('.') && f.name.starts_with(name)))
                {
                    return fail(format!("unexpected finding {} ({})", f.name, f.detail));
                }
            }
            "no-findings" => {
                if !d.findings.is_empty() {
                    return fail("expected no findings".into());
                }
            }
            "objects" => {
                let n = d.objects.len();
                let ok = if let Some(m) = rest.strip_prefix(">= ") {
                    n >= m.trim().parse::<usize>().unwrap()
                } else {
                    n == rest.trim().parse::<usize>().unwrap()
                };
                if !ok {
                    return fail(format!("{n} objects, expected {rest}"));
                }
            }
            other => return fail(format!("unknown expectation `{other}`")),
        }
    }
    Ok(())
}

#[test]
fn golden_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases = Vec::new();
    files(&root, &mut cases);
    assert!(
        cases.len() >= 10,
        "corpus went missing: {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &cases {
        let expect = std::fs::read_to_string(format!("{}.expect", case.display())).unwrap();
        let input = std::fs::read(case).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        let is_msg = case.extension().is_some_and(|e| e == "eml" || e == "mbox");
        let only = expect.lines().find_map(|l| {
            l.trim()
                .strip_prefix("only ")
                .map(str::trim)
                .map(str::to_string)
        });
        let variants: Vec<(&str, Vec<u8>)> = if is_msg {
            let mut v = Vec::new();
            if only.as_deref() != Some("crlf") {
                v.push(("lf", to_lf(&input)));
            }
            if only.as_deref() != Some("lf") {
                v.push(("crlf", to_crlf(&to_lf(&input))));
            }
            v
        } else {
            vec![("as-is", input)]
        };
        for (name, data) in variants {
            runs += 1;
            if let Err(e) = check(case, &data, &expect, name) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{runs} golden runs over {} cases", cases.len());
}
