//! The modifications that turn the message the MTA handed over into the
//! message a filter wants delivered (stamped, tagged, cleaned...).
//!
//! Headers are compared per name (case-insensitively), aligned from the
//! last occurrence, because filters prepend: a header that gains occurrences
//! gets them inserted at the top (`SMFIR_INSHEADER` at the position it has in
//! the new message's leading block) or appended when it is not in that
//! block; a header that loses occurrences has its first ones deleted
//! (`SMFIR_CHGHEADER` with an empty value, highest index first so the
//! indexes stay valid); a changed value is changed in place. The body is
//! replaced only when it differs.
//!
//! Guarantee: applying the result to `before` (as a milter MTA does) gives
//! `after`'s header set per name and `after`'s body. The relative order of
//! different header names outside the leading block is not reproduced (the
//! protocol cannot move a header).

use crate::handler::Modification;

/// One header: its name as written and its value without the leading space,
/// folded lines joined with `\n` (what the milter protocol carries).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    name: String,
    value: String,
}

/// Splits a message into headers and body (the body starts after the first
/// empty line; a message without one is all headers).
fn split(msg: &[u8]) -> (Vec<Header>, &[u8]) {
    let mut headers: Vec<Header> = Vec::new();
    let mut pos = 0;
    let mut body_at = msg.len();
    while pos < msg.len() {
        let end = memchr::memchr(b'\n', &msg[pos..]).map_or(msg.len(), |i| pos + i + 1);
        let raw = &msg[pos..end];
        let line = raw
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(raw);
        if line.is_empty() {
            body_at = end;
            break;
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(h) = headers.last_mut() {
                h.value.push('\n');
                h.value.push_str(&text);
            }
        } else if let Some((name, value)) = text.split_once(':') {
            headers.push(Header {
                name: name.trim_end().to_string(),
                value: value.trim_start_matches([' ', '\t']).to_string(),
            });
        }
        pos = end;
    }
    (headers, &msg[body_at.min(msg.len())..])
}

/// The modifications from `before` to `after`; see the module doc.
pub fn modifications(before: &[u8], after: &[u8]) -> Vec<Modification> {
    let (bh, bbody) = split(before);
    let (ah, abody) = split(after);
    let key = |n: &str| n.to_ascii_lowercase();
    // Names in order of first appearance in either message.
    let mut names: Vec<String> = Vec::new();
    for h in ah.iter().chain(bh.iter()) {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&h.name)) {
            names.push(h.name.clone());
        }
    }
    // The new message's leading block: headers before the first one whose
    // name and value are also in the old message.
    let lead = ah
        .iter()
        .position(|h| {
            bh.iter()
                .any(|b| b.name.eq_ignore_ascii_case(&h.name) && b.value == h.value)
        })
        .unwrap_or(ah.len());

    let mut inserts: Vec<(u32, Modification)> = Vec::new();
    let mut changes = Vec::new();
    let mut deletes = Vec::new();
    let mut adds = Vec::new();
    for name in &names {
        let k = key(name);
        let b: Vec<&Header> = bh.iter().filter(|h| key(&h.name) == k).collect();
        let a: Vec<(usize, &Header)> = ah
            .iter()
            .enumerate()
            .filter(|(_, h)| key(&h.name) == k)
            .collect();
        let common = a.len().min(b.len());
        // Aligned from the end.
        for i in 0..common {
            let bi = b.len() - common + i;
            let ai = a.len() - common + i;
            if b[bi].value != a[ai].1.value {
                changes.push(Modification::ChangeHeader {
                    name: b[bi].name.clone(),
                    index: (bi + 1) as u32,
                    value: a[ai].1.value.clone(),
                });
            }
        }
        if b.len() > a.len() {
            for bi in (0..b.len() - a.len()).rev() {
                deletes.push(Modification::DeleteHeader {
                    name: b[bi].name.clone(),
                    index: (bi + 1) as u32,
                });
            }
        }
        if a.len() > b.len() {
            for &(pos, h) in &a[..a.len() - b.len()] {
                if pos < lead {
                    inserts.push((
                        pos as u32,
                        Modification::InsertHeader {
                            index: pos as u32,
                            name: h.name.clone(),
                            value: h.value.clone(),
                        },
                    ));
                } else {
                    adds.push(Modification::AddHeader {
                        name: h.name.clone(),
                        value: h.value.clone(),
                    });
                }
            }
        }
    }
    // Changes refer to positions that deletions (of earlier occurrences) and
    // inserts (counted per name) do not shift: changes first, then deletions
    // highest index first, then inserts top to bottom.
    inserts.sort_by_key(|(p, _)| *p);
    let mut out = changes;
    out.extend(deletes);
    out.extend(inserts.into_iter().map(|(_, m)| m));
    out.extend(adds);
    if bbody != abody {
        out.push(Modification::ReplaceBody(abody.to_vec()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies modifications the way a milter MTA does, to check the diff.
    fn apply(before: &[u8], mods: &[Modification]) -> (Vec<Header>, Vec<u8>) {
        let (mut h, body) = split(before);
        let mut body = body.to_vec();
        let nth = |h: &Vec<Header>, name: &str, index: u32| {
            h.iter()
                .enumerate()
                .filter(|(_, x)| x.name.eq_ignore_ascii_case(name))
                .nth(index as usize - 1)
                .map(|(i, _)| i)
        };
        for m in mods {
            match m {
                Modification::ChangeHeader { name, index, value } => {
                    let i = nth(&h, name, *index).expect("index exists");
                    h[i].value = value.clone();
                }
                Modification::DeleteHeader { name, index } => {
                    let i = nth(&h, name, *index).expect("index exists");
                    h.remove(i);
                }
                Modification::InsertHeader { index, name, value } => h.insert(
                    (*index as usize).min(h.len()),
                    Header {
                        name: name.clone(),
                        value: value.clone(),
                    },
                ),
                Modification::AddHeader { name, value } => h.push(Header {
                    name: name.clone(),
                    value: value.clone(),
                }),
                Modification::ReplaceBody(b) => body = b.clone(),
                other => panic!("unexpected {other:?}"),
            }
        }
        (h, body)
    }

    fn check(before: &str, after: &str) -> Vec<Modification> {
        let mods = modifications(before.as_bytes(), after.as_bytes());
        let (h, body) = apply(before.as_bytes(), &mods);
        let (ah, abody) = split(after.as_bytes());
        let per_name = |v: &[Header]| {
            let mut x: Vec<(String, String)> = v
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
                .collect();
            x.sort();
            x
        };
        assert_eq!(per_name(&h), per_name(&ah), "{mods:?}");
        assert_eq!(body, abody);
        mods
    }

    #[test]
    fn identical_messages_need_nothing() {
        let m = "From: a@b\r\nSubject: hi\r\n\r\nbody\r\n";
        assert!(check(m, m).is_empty());
    }

    #[test]
    fn prepended_headers_are_inserted_at_the_top_in_order() {
        let mods = check(
            "From: a@b\r\nSubject: hi\r\n\r\nbody\r\n",
            "X-Stamp: v=1;\r\n mac=x\r\nX-Status: ok\r\nFrom: a@b\r\nSubject: hi\r\n\r\nbody\r\n",
        );
        assert_eq!(
            mods,
            vec![
                Modification::InsertHeader {
                    index: 0,
                    name: "X-Stamp".into(),
                    value: "v=1;\n mac=x".into()
                },
                Modification::InsertHeader {
                    index: 1,
                    name: "X-Status".into(),
                    value: "ok".into()
                },
            ]
        );
    }

    #[test]
    fn replaced_stamp_tagged_subject_and_removed_header() {
        let mods = check(
            "X-Stamp: forged\r\nX-Released: t\r\nFrom: a@b\r\nSubject: hi\r\n\r\nbody\r\n",
            "X-Stamp: ours\r\nFrom: a@b\r\nSubject: [SUSPICIOUS] hi\r\n\r\nbody\r\n",
        );
        assert!(mods.contains(&Modification::ChangeHeader {
            name: "Subject".into(),
            index: 1,
            value: "[SUSPICIOUS] hi".into()
        }));
        assert!(mods.contains(&Modification::DeleteHeader {
            name: "X-Released".into(),
            index: 1
        }));
    }

    #[test]
    fn several_occurrences_lose_the_first_ones() {
        check(
            "Received: a\r\nReceived: b\r\nReceived: c\r\nX: 1\r\n\r\nb\r\n",
            "Received: c\r\nX: 1\r\n\r\nb\r\n",
        );
        check(
            "Received: a\r\nReceived: b\r\n\r\nb\r\n",
            "Received: new\r\nReceived: a\r\nReceived: b\r\n\r\nb\r\n",
        );
    }

    #[test]
    fn cleaned_body_and_content_type_are_replaced() {
        let mods = check(
            "Content-Type: application/octet-stream\r\nSubject: x\r\n\r\nMZ...\r\n",
            "Content-Type: text/plain; charset=utf-8\r\nSubject: x\r\nX-Status: cleaned\r\n\r\nremoved\r\n",
        );
        assert!(mods
            .iter()
            .any(|m| matches!(m, Modification::ReplaceBody(b) if b == b"removed\r\n")));
        assert!(mods
            .iter()
            .any(|m| matches!(m, Modification::AddHeader { name, .. } if name == "X-Status")));
    }

    #[test]
    fn garbage_never_panics() {
        for (a, b) in [
            ("", ""),
            ("no colon\r\n", "x"),
            ("\r\n", "A: b\r\n"),
            (" leading continuation\r\nA: b", "A: c"),
        ] {
            let _ = modifications(a.as_bytes(), b.as_bytes());
        }
    }
}
