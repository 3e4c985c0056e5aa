//! The `clean` rewrite (`mxguard_decode::rewrite`).
//!
//! Data files under `tests/corpus/rewrite/`: `NAME.eml`, `NAME.eml.locations`
//! (one location per line; `<input>` is the message itself; `\n` and `\\`
//! escapes), and either `NAME.eml.cleaned` (the expected message, with the
//! notice of [`notice`]) or `NAME.eml.error` (the expected error, Debug form).
//! Each case runs with LF and with CRLF line ends. `MXGUARD_BLESS=1` writes the
//! `.cleaned` files of successful cases (review them before committing).
//!
//! Every successful rewrite, here and in the property tests, is also checked
//! by walking the result: nothing that held EICAR is left, each removed part is
//! the notice at the same location, and every other object of the walk is
//! still there at its location with the same bytes.

use mxguard_decode::rewrite::{remove_parts, remove_parts_with, Cleaned, RemovedPart};
use mxguard_decode::{DecodeBudget, DecodeOptions, Decoder};
use std::path::{Path, PathBuf};
use std::time::Duration;

const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The notice every test uses.
fn notice(p: &RemovedPart) -> String {
    format!(
        "mxguard removed {}\ntype: {}\nname: {}\nfound at: {}\n",
        if p.location.is_empty() {
            "the body"
        } else {
            &p.location
        },
        p.content_type,
        p.name.as_deref().unwrap_or("-"),
        p.found.join(", ")
    )
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

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn decoder(budget: &DecodeBudget) -> Decoder {
    Decoder::new(DecodeOptions {
        budget: budget.clone(),
        ..Default::default()
    })
}

/// An object below the input: location, bytes, declared type.
type Obj = (String, Vec<u8>, Option<String>);

/// Objects below the input, in walk order, and whether the walk hit a limit.
fn objects(dec: &Decoder, msg: &[u8]) -> (Vec<Obj>, bool) {
    let d = dec.decode(msg);
    let limited = !d.summary.limits.is_empty() || d.summary.stopped;
    (
        d.objects
            .iter()
            .filter(|o| o.depth > 0)
            .map(|o| (o.location.clone(), o.data.to_vec(), o.declared_type.clone()))
            .collect(),
        limited,
    )
}

fn under(loc: &str, removed: &[RemovedPart]) -> bool {
    removed.iter().any(|r| {
        r.location.is_empty()
            || loc == r.location
            || loc
                .strip_prefix(r.location.as_str())
                .is_some_and(|t| t.starts_with('/'))
    })
}

/// How much [`check_cleaned`] asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A test message: no EICAR may be left, both walks must compare.
    Strict,
    /// A mutated message: no EICAR test (a mutation may have moved it out of
    /// its part), and the walks are compared only when both ran in full and
    /// the cleaned message is walked as mail.
    Loose,
}

fn walked_as_mail(d: &mxguard_decode::Decoded<'_>, msg: &[u8]) -> bool {
    d.objects
        .first()
        .is_some_and(|o| matches!(o.file_type.name(), "mail" | "mhtml"))
        && !msg.starts_with(b"From ")
}

/// Walks the original and the cleaned message and checks the promises.
fn check_cleaned(
    budget: &DecodeBudget,
    original: &[u8],
    cleaned: &Cleaned,
    mode: Mode,
) -> Result<(), String> {
    let dec = decoder(budget);
    let eol: &[u8] = match original.iter().position(|&c| c == b'\n') {
        Some(i) if i == 0 || original[i - 1] != b'\r' => b"\n",
        _ => b"\r\n",
    };
    let (before, limited_before) = objects(&dec, original);
    let (after, limited_after) = objects(&dec, &cleaned.message);
    if mode == Mode::Strict
        && (contains(&cleaned.message, EICAR) || after.iter().any(|(_, d, _)| contains(d, EICAR)))
    {
        return Err("EICAR is still in the cleaned message".into());
    }
    if mode == Mode::Loose
        && (limited_before
            || limited_after
            || !walked_as_mail(&dec.decode(&cleaned.message), &cleaned.message))
    {
        return Ok(());
    }
    // Each removed part is now the notice, at the same location.
    for r in &cleaned.removed {
        let text = notice(r);
        let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
        let mut want = lines.join(std::str::from_utf8(eol).unwrap()).into_bytes();
        let at = if r.location.is_empty() {
            want.extend_from_slice(eol);
            "part[1]"
        } else {
            r.location.as_str()
        };
        // A part that runs to the end of the message keeps the last line break.
        let mut at_end = want.clone();
        at_end.extend_from_slice(eol);
        let found = after.iter().find(|(l, _, _)| l == at);
        match found {
            Some((_, data, declared)) if *data == want || *data == at_end => {
                if declared.as_deref() != Some("text/plain") {
                    return Err(format!("the notice at {at} is {declared:?}"));
                }
            }
            Some((_, data, _)) => {
                return Err(format!(
                    "the notice at {at} reads {:?}, not {:?}",
                    String::from_utf8_lossy(data),
                    String::from_utf8_lossy(&want)
                ))
            }
            None => return Err(format!("no notice object at {at}")),
        }
        if let Some((l, _, _)) = after
            .iter()
            .find(|(l, _, _)| l.starts_with(at) && l[at.len()..].starts_with('/'))
        {
            return Err(format!("an object {l} inside the notice"));
        }
    }
    // Everything else is as it was.
    let keep = |v: &[Obj]| -> Vec<(String, Vec<u8>)> {
        v.iter()
            .filter(|(l, _, _)| !under(l, &cleaned.removed))
            .map(|(l, d, _)| (l.clone(), d.clone()))
            .collect()
    };
    let (b, a) = (keep(&before), keep(&after));
    if b != a {
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        return Err(format!(
            "other objects changed:\n  before {:?}\n  after  {:?}",
            names(&b),
            names(&a)
        ));
    }
    Ok(())
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    v.sort();
    v
}

#[test]
fn rewrite_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/rewrite");
    let bless = std::env::var_os("MXGUARD_BLESS").is_some();
    let budget = DecodeBudget::default();
    let mut failures = Vec::new();
    let (mut runs, mut ok_runs, mut err_runs) = (0, 0, 0);
    for case in cases(&dir) {
        let input = std::fs::read(&case).unwrap();
        let side = |ext: &str| PathBuf::from(format!("{}.{ext}", case.display()));
        let locations: Vec<String> = std::fs::read_to_string(side("locations"))
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()))
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                if l.trim() == "<input>" {
                    String::new()
                } else {
                    unescape(l)
                }
            })
            .collect();
        let locs: Vec<&str> = locations.iter().map(String::as_str).collect();
        let expected_error = std::fs::read_to_string(side("error")).ok();
        let expected = std::fs::read(side("cleaned")).ok();
        for (variant, msg) in [("lf", to_lf(&input)), ("crlf", to_crlf(&to_lf(&input)))] {
            runs += 1;
            let fail = |m: String| format!("{} [{variant}]: {m}", case.display());
            let got = remove_parts(&msg, &locs, &notice);
            match (&expected_error, got) {
                (Some(e), Err(got)) => {
                    if format!("{got:?}") != e.trim() {
                        failures.push(fail(format!("error {got:?}, expected {}", e.trim())));
                    }
                    err_runs += 1;
                }
                (Some(e), Ok(_)) => {
                    failures.push(fail(format!("succeeded, expected {}", e.trim())))
                }
                (None, Err(e)) => failures.push(fail(format!("{e} ({e:?})"))),
                (None, Ok(c)) => {
                    // The locations are what the walk reports, and EICAR is there to remove.
                    let (objs, _) = objects(&decoder(&budget), &msg);
                    for l in locs.iter().filter(|l| !l.is_empty()) {
                        if !objs.iter().any(|(o, _, _)| o == l) {
                            failures.push(fail(format!("the walk has no object at {l}")));
                        }
                    }
                    if !objs.iter().any(|(_, d, _)| contains(d, EICAR)) {
                        failures.push(fail("no EICAR in the original walk".into()));
                    }
                    if variant == "lf" && bless {
                        std::fs::write(side("cleaned"), &c.message).unwrap();
                    }
                    let want = match (&expected, variant) {
                        (Some(e), "lf") => Some(to_lf(e)),
                        (Some(e), _) => Some(to_crlf(&to_lf(e))),
                        (None, _) => None,
                    };
                    match want {
                        None if !bless => failures.push(fail("no .cleaned file".into())),
                        Some(w) if !bless && w != c.message => failures.push(fail(format!(
                            "output differs:\n{}",
                            String::from_utf8_lossy(&c.message)
                        ))),
                        _ => {}
                    }
                    if let Err(e) = check_cleaned(&budget, &msg, &c, Mode::Strict) {
                        failures.push(fail(e));
                    }
                    ok_runs += 1;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ok_runs >= 16 && err_runs >= 6,
        "{ok_runs} ok, {err_runs} errors"
    );
    eprintln!("{runs} rewrite runs ({ok_runs} cleaned, {err_runs} refused)");
}

#[test]
fn removed_parts_report_names_types_and_locations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/rewrite");
    let msg = std::fs::read(dir.join("two-locations.eml")).unwrap();
    let c = remove_parts(
        &msg,
        &[
            "part[4]/two.zip/two.com",
            "part[2]/one.com",
            "part[4]/two.zip",
            "part[2]/one.com",
        ],
        &notice,
    )
    .unwrap();
    let r: Vec<_> = c
        .removed
        .iter()
        .map(|r| {
            (
                r.location.as_str(),
                r.name.as_deref(),
                r.content_type.as_str(),
                r.found.clone(),
            )
        })
        .collect();
    assert_eq!(
        r,
        vec![
            (
                "part[2]",
                Some("one.com"),
                "application/octet-stream",
                vec!["part[2]/one.com".to_string()]
            ),
            (
                "part[4]",
                Some("two.zip"),
                "application/zip",
                vec![
                    "part[4]/two.zip/two.com".to_string(),
                    "part[4]/two.zip".to_string()
                ]
            ),
        ]
    );
    // No location: nothing to do.
    let c = remove_parts(&msg, &[], &notice).unwrap();
    assert_eq!(c.message, msg);
    assert!(c.removed.is_empty());
}

#[test]
fn the_budget_sets_how_deep_multiparts_are_numbered() {
    // Three nested multiparts; with max_depth 2 the walk splits two levels and
    // hands the third over as one part, `part[1.1]`.
    let mut msg = b"From: a\nContent-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: application/octet-stream\n\n".to_vec();
    msg.extend_from_slice(EICAR);
    msg.extend_from_slice(b"\n--c--\n--b--\n--a--\n");
    let msg = &msg[..];
    let shallow = DecodeBudget {
        max_depth: 2,
        ..Default::default()
    };
    let (objs, _) = objects(&decoder(&shallow), msg);
    let at: Vec<&str> = objs
        .iter()
        .filter(|o| contains(&o.1, EICAR))
        .map(|o| o.0.as_str())
        .collect();
    assert!(at.contains(&"part[1.1]"), "{at:?}");
    let c = remove_parts_with(&shallow, msg, &at, &notice).unwrap();
    check_cleaned(&shallow, msg, &c, Mode::Strict).unwrap();
    // With the default budget, part[1.1] is a multipart whose parts are walked.
    let e = remove_parts(msg, &["part[1.1]"], &notice).unwrap_err();
    assert_eq!(format!("{e:?}"), "Multipart(\"part[1.1]\")");
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push('\n');
        }
        let v = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            out.push(if k <= c.len() {
                A[((v >> (18 - 6 * k)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A random MIME entity (headers, blank line, body), LF line ends.
fn entity(rng: &mut Rng, depth: usize, counter: &mut u32, in_digest: bool) -> String {
    *counter += 1;
    let id = *counter;
    let kind = if depth >= 4 {
        rng.below(5)
    } else if depth == 0 && rng.chance(85) {
        // Mostly multipart messages: a single part loses the whole body.
        5
    } else {
        rng.below(9)
    };
    match kind {
        0 => format!("Content-Type: text/plain\n\nplain text {id}\n"),
        1 => format!(
            "Content-Type: application/octet-stream; name=\"f{id}.bin\"\nContent-Transfer-Encoding: base64\n\n{}\n",
            b64(format!("binary content {id}").as_bytes())
        ),
        2 => format!(
            "Content-Type: application/octet-stream; name=\"bad{id}.com\"\nContent-Disposition: attachment; filename=\"bad{id}.com\"\nContent-Transfer-Encoding: base64\n\n{}\n",
            b64(EICAR)
        ),
        3 => format!(
            "Content-Type: text/html; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n\n<p>=58{}</p>\n",
            std::str::from_utf8(&EICAR[1..]).unwrap()
        ),
        4 if in_digest => format!("\nFrom: d{id}@example.com\nSubject: digest {id}\n\ndigest body {id}\n"),
        4 => format!("Content-Type: text/plain; name=\"t{id}.txt\"\n\n\n"),
        5..=7 => {
            let sub = ["mixed", "alternative", "digest", "related"][rng.below(4)];
            // Sometimes an inner multipart reuses its parent's boundary.
            let b = if rng.chance(10) {
                "b1".to_string()
            } else {
                format!("b{id}")
            };
            let mut s = format!("Content-Type: multipart/{sub}; boundary=\"{b}\"\n\n");
            if rng.chance(30) {
                s.push_str("preamble\n");
            }
            let n = rng.below(4);
            if n == 0 && rng.chance(50) {
                // No delimiter at all: walked as one part.
                s.push_str(&format!("no parts here {id}\n"));
                return s;
            }
            for _ in 0..n {
                s.push_str(&format!("--{b}\n"));
                s.push_str(&entity(rng, depth + 1, counter, sub == "digest"));
            }
            if rng.chance(90) {
                s.push_str(&format!("--{b}--\n"));
                if rng.chance(30) {
                    s.push_str("epilogue\n");
                }
            }
            s
        }
        _ => {
            let name = if rng.chance(50) {
                format!("; name=\"m{id}.eml\"")
            } else {
                String::new()
            };
            let inner = format!(
                "From: inner{id}@example.com\nSubject: inner {id}\nMIME-Version: 1.0\n{}",
                entity(rng, depth + 1, counter, false)
            );
            if rng.chance(30) {
                format!(
                    "Content-Type: message/rfc822{name}\nContent-Transfer-Encoding: base64\n\n{}\n",
                    b64(inner.as_bytes())
                )
            } else {
                format!("Content-Type: message/rfc822{name}\n\n{inner}")
            }
        }
    }
}

fn random_message(rng: &mut Rng) -> Vec<u8> {
    let mut counter = 0;
    let mut m = String::from("From: a@example.com\nTo: b@example.com\nSubject: random\n");
    if rng.chance(70) {
        m.push_str("MIME-Version: 1.0\n");
    }
    m.push_str(&entity(rng, 0, &mut counter, false));
    let m = m.into_bytes();
    if rng.chance(50) {
        to_crlf(&m)
    } else {
        m
    }
}

/// Random messages: every object the walk finds EICAR in is removed; the
/// cleaned message holds no EICAR and every other object is unchanged.
#[test]
fn random_messages_lose_exactly_the_infected_parts() {
    let budget = DecodeBudget::default();
    let dec = decoder(&budget);
    let mut rng = Rng(0x05EE_D0FC_1EA4_u64);
    let (mut cleaned, mut whole) = (0, 0);
    for round in 0..600 {
        let msg = random_message(&mut rng);
        let (objs, _) = objects(&dec, &msg);
        let mut locs: Vec<&str> = objs
            .iter()
            .filter(|(_, d, _)| contains(d, EICAR))
            .map(|(l, _, _)| l.as_str())
            .collect();
        if locs.is_empty() {
            continue;
        }
        // Also the walk's other locations now and then (they must map too).
        if rng.chance(20) {
            locs.push(objs[rng.below(objs.len())].0.as_str());
        }
        let c = remove_parts(&msg, &locs, &notice).unwrap_or_else(|e| {
            panic!(
                "round {round}: {e} for {locs:?} in\n{}",
                String::from_utf8_lossy(&msg)
            )
        });
        if let Err(e) = check_cleaned(&budget, &msg, &c, Mode::Strict) {
            panic!(
                "round {round}: {e}\nlocations {locs:?}\n--- original\n{}\n--- cleaned\n{}",
                String::from_utf8_lossy(&msg),
                String::from_utf8_lossy(&c.message)
            );
        }
        cleaned += 1;
        whole += usize::from(c.removed.iter().any(|r| r.location.is_empty()));
    }
    eprintln!("{cleaned} random messages cleaned, {whole} of them whole");
    assert!(cleaned >= 200, "{cleaned} messages cleaned");
    assert!(
        whole >= 1 && whole < cleaned / 2,
        "{whole} of {cleaned} lost their whole body"
    );
}

fn corpus_messages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut v = Vec::new();
    for sub in ["rfc", "malformed", "rewrite", "heuristics"] {
        if let Ok(rd) = std::fs::read_dir(root.join(sub)) {
            v.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "eml")),
            );
        }
    }
    v.sort();
    v
}

/// Mutated messages: the rewrite never panics, every location the walk
/// reports maps to a part (a message walked as mail never yields an error),
/// and what is not removed stays as it was.
#[test]
fn mutated_messages_never_panic_and_every_walk_location_maps() {
    let budget = DecodeBudget {
        max_depth: 8,
        max_objects: 500,
        max_object_size: 4 << 20,
        max_total_size: 16 << 20,
        max_time: Duration::from_secs(10),
        ..Default::default()
    };
    let dec = decoder(&budget);
    let mut rng = Rng(0x0DDB_A11C_AFE5_EED5);
    let files = corpus_messages();
    assert!(files.len() >= 10);
    let mut mapped = 0;
    for f in &files {
        let orig = std::fs::read(f).unwrap();
        for round in 0..40 {
            let mut d = orig.clone();
            if round > 0 {
                for _ in 0..1 + rng.below(4) {
                    if d.is_empty() {
                        break;
                    }
                    let i = rng.below(d.len());
                    match rng.below(5) {
                        0 => d[i] ^= 1 << rng.below(8),
                        1 => d[i] = [b'-', b'\n', b'\r', b':', b' ', 0, 0xff][rng.below(7)],
                        2 => d.truncate(i),
                        3 => {
                            let j = rng.below(d.len());
                            let chunk = d[i.min(j)..i.max(j)].to_vec();
                            let at = rng.below(d.len());
                            d.splice(at..at, chunk);
                        }
                        _ => {
                            d.drain(i..(i + rng.below(64)).min(d.len()));
                        }
                    }
                }
            }
            let decoded = dec.decode(&d);
            let mut all: Vec<String> = decoded
                .objects
                .iter()
                .map(|o| o.location.clone())
                .chain(decoded.findings.iter().map(|x| x.location.clone()))
                .filter(|l| !l.is_empty())
                .collect();
            all.dedup();
            let as_mail = walked_as_mail(&decoded, &d);
            // Every single location, then a random handful at once.
            let mut sets: Vec<Vec<&str>> = all.iter().map(|l| vec![l.as_str()]).collect();
            let pick: Vec<&str> = all
                .iter()
                .filter(|_| rng.chance(30))
                .map(String::as_str)
                .collect();
            sets.push(pick);
            for locs in sets {
                let r = remove_parts_with(&budget, &d, &locs, &notice);
                match r {
                    Ok(c) => {
                        mapped += 1;
                        if as_mail {
                            if let Err(e) = check_cleaned(&budget, &d, &c, Mode::Loose) {
                                panic!(
                                    "{} round {round}: {e}\nlocations {locs:?}\n--- input\n{}\n--- cleaned\n{}",
                                    f.display(),
                                    String::from_utf8_lossy(&d),
                                    String::from_utf8_lossy(&c.message)
                                );
                            }
                        }
                    }
                    Err(e) => {
                        if as_mail {
                            panic!(
                                "{} round {round}: {e} for {locs:?}\n{}",
                                f.display(),
                                String::from_utf8_lossy(&d)
                            );
                        }
                    }
                }
            }
        }
    }
    eprintln!("{mapped} rewrites of mutated messages");
    assert!(mapped > 500, "{mapped}");
}
