use super::*;

const MSG: &[u8] = b"Received: from a.example by mx1\r\n\
From: Alice <alice@example.com>\r\n\
To: bob@example.org\r\n\
Message-ID: <1234@a.example>\r\n\
Subject: quarterly figures\r\n\
\r\n\
Hello Bob,\r\n\
\r\n\
the figures are attached.\r\n\
X-MXGuard-Stamp: this line is body text, not a header\r\n\
\r\n";

fn key(b: u8) -> StampKey {
    StampKey::from_bytes(&[b; 32]).unwrap()
}

fn fields() -> StampFields {
    StampFields {
        engine: "0.1.0".into(),
        sigs: "27123".into(),
        result: StampResult::Clean,
        node: "mx1".into(),
        time: 1_767_225_600,
    }
}

fn current() -> Current {
    Current {
        engine: "0.1.0".into(),
        sigs: "27123".into(),
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `verify` with the usual expectations: ring of `key(1)`, any node, no age limit.
fn check(message: &[u8]) -> StampCheck {
    verify(
        message,
        &KeyRing::from(key(1)),
        &current(),
        &[],
        None,
        at(fields().time),
    )
}

fn stamped(message: &[u8]) -> Vec<u8> {
    add_stamp(message, &fields(), &key(1)).unwrap()
}

fn to_lf(m: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(m)
        .replace("\r\n", "\n")
        .into_bytes()
}

fn to_crlf(m: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(m)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

fn replace(m: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8_lossy(m);
    assert!(s.contains(from), "{from:?} not in message");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn round_trip() {
    let m = stamped(MSG);
    assert!(m.starts_with(b"X-MXGuard-Stamp: v=1; engine=0.1.0; sigs=27123;"));
    assert!(m.ends_with(MSG), "the message follows unchanged");
    assert_eq!(check(&m), StampCheck::Valid(fields()));
    assert!(check(&m).is_valid());
    for result in [StampResult::Cleaned, StampResult::Suspicious] {
        let f = StampFields { result, ..fields() };
        let m = add_stamp(MSG, &f, &key(1)).unwrap();
        assert_eq!(check(&m), StampCheck::Valid(f));
    }
}

#[test]
fn header_shape() {
    let long = "x".repeat(MAX_VALUE_LEN);
    let f = StampFields {
        engine: long.clone(),
        sigs: long.clone(),
        node: long,
        time: u64::MAX,
        ..fields()
    };
    for f in [fields(), f] {
        let h = stamp_header(&f, MSG, &key(1)).unwrap();
        assert!(h.ends_with("\r\n"));
        let body = &h[..h.len() - 2];
        for (i, line) in body.split("\r\n").enumerate() {
            assert!(line.len() <= FOLD_AT, "line {i} too long: {line:?}");
            assert_eq!(
                i > 0,
                line.starts_with(' '),
                "continuations start with a space"
            );
        }
        assert!(body.replace("\r\n", "").len() < 400);
        assert_eq!(body.matches('\n').count(), body.matches("\r\n").count());
        assert!(!body.contains("\r\n\r\n") && !body.contains('\t'));
        let m = [h.as_bytes(), MSG].concat();
        assert_eq!(check(&m).is_valid(), f == fields());
    }
}

#[test]
fn changed_body_is_bad_mac() {
    let m = stamped(MSG);
    assert_eq!(
        check(&replace(&m, "attached", "attacked")),
        StampCheck::BadMac
    );
    assert_eq!(check(&replace(&m, "Hello", "Hello ")), StampCheck::BadMac);
    // A body line that looks like a header is body: changing it counts.
    assert_eq!(
        check(&replace(&m, "is body text", "is body  text")),
        StampCheck::BadMac
    );
    // Removing the empty line after the greeting.
    assert_eq!(
        check(&replace(&m, "Bob,\r\n\r\n", "Bob,\r\n")),
        StampCheck::BadMac
    );
}

#[test]
fn changed_message_id_is_bad_mac() {
    let m = stamped(MSG);
    assert_eq!(
        check(&replace(&m, "<1234@a.example>", "<1235@a.example>")),
        StampCheck::BadMac
    );
    assert_eq!(
        check(&replace(&m, "Message-ID: <1234@a.example>\r\n", "")),
        StampCheck::BadMac
    );
    // Refolded, re-spaced or renamed in another case: the same value.
    let refolded = replace(
        &m,
        "Message-ID: <1234@a.example>",
        "message-id:\r\n\t<1234@a.example>  ",
    );
    assert_eq!(check(&refolded), StampCheck::Valid(fields()));
    // Only the first Message-ID counts.
    let second = replace(&m, "Subject:", "Message-ID: <other@x>\r\nSubject:");
    assert_eq!(check(&second), StampCheck::Valid(fields()));
    // A message without Message-ID can be stamped too.
    let none = replace(MSG, "Message-ID: <1234@a.example>\r\n", "");
    let s = stamped(&none);
    assert_eq!(check(&s), StampCheck::Valid(fields()));
    assert_eq!(
        check(&replace(&s, "Subject:", "Message-ID: <new@x>\r\nSubject:")),
        StampCheck::BadMac
    );
}

#[test]
fn other_headers_are_not_covered() {
    let m = stamped(MSG);
    // The stamp is above the hop's own Received line, like a real hop adds it.
    let hop = [b"Received: from mx1 by hub1\r\n".as_slice(), &m].concat();
    assert_eq!(check(&hop), StampCheck::Valid(fields()));
    let subject = replace(&m, "quarterly figures", "[ext] quarterly figures");
    assert_eq!(check(&subject), StampCheck::Valid(fields()));
}

#[test]
fn line_ending_conversion_keeps_the_stamp_valid() {
    let crlf_stamped = stamped(MSG);
    assert_eq!(check(&to_lf(&crlf_stamped)), StampCheck::Valid(fields()));

    let lf = to_lf(MSG);
    let lf_stamped = stamped(&lf);
    assert!(
        !lf_stamped.contains(&b'\r'),
        "the stamp follows the message's LF style"
    );
    assert_eq!(check(&lf_stamped), StampCheck::Valid(fields()));
    assert_eq!(check(&to_crlf(&lf_stamped)), StampCheck::Valid(fields()));

    // Trailing empty lines and a missing final line break do not matter.
    let more = [crlf_stamped.as_slice(), b"\r\n\r\n\n"].concat();
    assert_eq!(check(&more), StampCheck::Valid(fields()));
    let trimmed = crlf_stamped.strip_suffix(b"\r\n\r\n").unwrap();
    assert_eq!(check(trimmed), StampCheck::Valid(fields()));
    // Leading empty lines of the body do.
    let lead = replace(&crlf_stamped, "\r\n\r\nHello", "\r\n\r\n\r\nHello");
    assert_eq!(check(&lead), StampCheck::BadMac);
}

#[test]
fn other_versions_are_stale() {
    let m = stamped(MSG);
    let newer_sigs = Current {
        sigs: "27124".into(),
        ..current()
    };
    let newer_engine = Current {
        engine: "0.2.0".into(),
        ..current()
    };
    for expected in [newer_sigs, newer_engine] {
        assert_eq!(
            verify(&m, &key(1).into(), &expected, &[], None, at(0)),
            StampCheck::Stale {
                engine: "0.1.0".into(),
                sigs: "27123".into()
            }
        );
    }
}

#[test]
fn wrong_key_is_bad_mac() {
    let m = stamped(MSG);
    let ring = KeyRing::from(key(2));
    assert_eq!(
        verify(&m, &ring, &current(), &[], None, at(0)),
        StampCheck::BadMac
    );
    // A key differing in its last byte only.
    let mut bytes = [1u8; 32];
    bytes[31] = 0;
    let close = KeyRing::from(StampKey::from_bytes(&bytes).unwrap());
    assert_eq!(
        verify(&m, &close, &current(), &[], None, at(0)),
        StampCheck::BadMac
    );
    // A forged mac (right length, wrong value).
    let h = stamp_header(&fields(), MSG, &key(1)).unwrap();
    let mac_at = h.find("mac=").unwrap() + 4;
    let mut forged = h.clone();
    let first = if &h[mac_at..mac_at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    forged.replace_range(mac_at..mac_at + 1, first);
    assert_eq!(
        check(&[forged.as_bytes(), MSG].concat()),
        StampCheck::BadMac
    );
}

#[test]
fn key_rotation() {
    // Nodes that already sign with the new key 2 still accept stamps by key 1.
    let m = stamped(MSG);
    let mut ring = KeyRing::new(vec![key(2), key(1)]).unwrap();
    assert_eq!(ring.signing_key().fingerprint(), key(2).fingerprint());
    assert_eq!(
        verify(&m, &ring, &current(), &[], None, at(0)),
        StampCheck::Valid(fields())
    );
    // And stamps made with the ring's signing key verify on a node that only
    // has key 2 as its second key.
    let new = add_stamp(MSG, &fields(), ring.signing_key()).unwrap();
    let old_node = KeyRing::new(vec![key(1), key(2)]).unwrap();
    assert!(verify(&new, &old_node, &current(), &[], None, at(0)).is_valid());
    // Once key 1 is dropped everywhere, its stamps no longer count.
    assert_eq!(
        verify(&m, &KeyRing::from(key(2)), &current(), &[], None, at(0)),
        StampCheck::BadMac
    );
    ring.push(key(3));
    assert_eq!(ring.keys().len(), 3);
    assert!(matches!(KeyRing::new(vec![]), Err(KeyError::EmptyRing)));
}

#[test]
fn strip_removes_top_level_stamps_only() {
    let attached = b"Content-Type: message/rfc822\r\n\r\n\
X-MXGuard-Stamp: v=1; node=inner\r\n\
Subject: inner\r\n\r\ninner body\r\n";
    let body = [
        b"Hello\r\nX-MXGuard-Stamp: v=1; looks like a stamp\r\n--b\r\n".as_slice(),
        attached,
    ]
    .concat();
    let clean_head = b"From: a@example.com\r\nSubject: s\r\n".as_slice();
    let clean = [clean_head, b"\r\n", &body].concat();
    let dirty = [
        b"X-MXGuard-Stamp: v=1; engine=x;\r\n mac=AAAA\r\n".as_slice(),
        b"From: a@example.com\r\n",
        b"x-mxguard-stamp :\tv=1;\r\n\tengine=e; node=n\r\n",
        b"Subject: s\r\n",
        b"X-MXGUARD-STAMP: bare\r\n",
        b"\r\n",
        &body,
    ]
    .concat();
    let out = strip_stamps(&dirty);
    assert!(matches!(out, Cow::Owned(_)));
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&clean)
    );
    assert!(matches!(strip_stamps(&clean), Cow::Borrowed(_)));
    // Names that only begin like ours stay.
    let near = b"X-MXGuard-Stamped: yes\r\nX-MXGuard-Stamp-Info: x\r\n\r\nb\r\n";
    assert!(matches!(strip_stamps(near), Cow::Borrowed(_)));
    // LF messages, and a message that is all header.
    assert_eq!(&*strip_stamps(&to_lf(&dirty)), to_lf(&clean).as_slice());
    assert_eq!(&*strip_stamps(b"X-MXGuard-Stamp: v=1"), b"");
    // What add_stamp adds, strip_stamps removes.
    let m = stamped(&stamped(MSG));
    assert_eq!(&*strip_stamps(&m), MSG);
    assert_eq!(check(&strip_stamps(&m)), StampCheck::Missing);
}

#[test]
fn untrusted_node() {
    let m = stamped(MSG);
    let only = |nodes: &[&str]| {
        let nodes: Vec<String> = nodes.iter().map(|s| s.to_string()).collect();
        verify(&m, &key(1).into(), &current(), &nodes, None, at(0))
    };
    assert_eq!(
        only(&["mx2", "hub1"]),
        StampCheck::UntrustedNode("mx1".into())
    );
    assert_eq!(only(&["MX1"]), StampCheck::UntrustedNode("mx1".into()));
    assert_eq!(only(&["mx2", "mx1"]), StampCheck::Valid(fields()));
    assert_eq!(only(&[]), StampCheck::Valid(fields()));
}

#[test]
fn age_limits() {
    let m = stamped(MSG);
    let t = fields().time;
    let day = Duration::from_secs(86_400);
    let at_ =
        |now: u64, max: Option<Duration>| verify(&m, &key(1).into(), &current(), &[], max, at(now));
    assert!(at_(t + 86_400, Some(day)).is_valid());
    assert_eq!(at_(t + 86_401, Some(day)), StampCheck::Expired);
    assert!(at_(t + 10 * 86_400, None).is_valid(), "None: no limit");
    let skew = MAX_CLOCK_SKEW.as_secs();
    assert!(at_(t - skew, Some(day)).is_valid(), "small clock skew");
    assert_eq!(at_(t - skew - 1, Some(day)), StampCheck::Expired);
    assert!(at_(0, None).is_valid());
    assert_eq!(unix_time(UNIX_EPOCH - Duration::from_secs(5)), 0);
}

#[test]
fn creation_rejects_bad_values() {
    let cases: &[(&str, &str, FieldError)] = &[
        ("engine", "", FieldError::Empty { field: "engine" }),
        (
            "sigs",
            "1;2",
            FieldError::BadByte {
                field: "sigs",
                byte: b';',
            },
        ),
        (
            "node",
            "mx\r1",
            FieldError::BadByte {
                field: "node",
                byte: b'\r',
            },
        ),
        (
            "node",
            "mx\n1",
            FieldError::BadByte {
                field: "node",
                byte: b'\n',
            },
        ),
        (
            "engine",
            "0.1 beta",
            FieldError::BadByte {
                field: "engine",
                byte: b' ',
            },
        ),
        (
            "engine",
            "0.1\tb",
            FieldError::BadByte {
                field: "engine",
                byte: b'\t',
            },
        ),
        (
            "node",
            "nœud",
            FieldError::BadByte {
                field: "node",
                byte: 0xc5,
            },
        ),
        (
            "sigs",
            &"9".repeat(MAX_VALUE_LEN + 1),
            FieldError::TooLong { field: "sigs" },
        ),
    ];
    for (field, value, want) in cases {
        let mut f = fields();
        match *field {
            "engine" => f.engine = value.to_string(),
            "sigs" => f.sigs = value.to_string(),
            _ => f.node = value.to_string(),
        }
        assert_eq!(f.validate().as_ref(), Err(want), "{field}={value:?}");
        assert_eq!(stamp_header(&f, MSG, &key(1)).as_ref(), Err(want));
        assert_eq!(add_stamp(MSG, &f, &key(1)).as_ref(), Err(want));
    }
    let ok = StampFields {
        engine: "mxguard/0.1.0+g1a2b=x".into(),
        ..fields()
    };
    let expected = Current {
        engine: ok.engine.clone(),
        ..current()
    };
    let m = add_stamp(MSG, &ok, &key(1)).unwrap();
    assert_eq!(
        verify(&m, &key(1).into(), &expected, &[], None, at(0)),
        StampCheck::Valid(ok)
    );
}

#[test]
fn malformed_headers() {
    let good = stamp_header(&fields(), MSG, &key(1)).unwrap();
    let value = good
        .strip_prefix("X-MXGuard-Stamp:")
        .unwrap()
        .replace("\r\n", "");
    let mac = value.split("mac=").nth(1).unwrap().trim().to_string();
    let with = |v: &str| [format!("X-MXGuard-Stamp:{v}\r\n").as_bytes(), MSG].concat();
    // The reassembled good value is valid, also reordered and re-spaced.
    assert!(check(&with(&value)).is_valid());
    let reordered =
        format!("mac={mac} ;t=1767225600;node=mx1; result=clean;sigs=27123;engine=0.1.0;v=1;");
    assert!(check(&with(&reordered)).is_valid());

    let base = |skip: &str, extra: &str| {
        let mut tags: Vec<String> = [
            "v=1",
            "engine=0.1.0",
            "sigs=27123",
            "result=clean",
            "node=mx1",
            "t=1767225600",
        ]
        .iter()
        .filter(|t| !t.starts_with(&format!("{skip}=")))
        .map(|s| s.to_string())
        .collect();
        if skip != "mac" {
            tags.push(format!("mac={mac}"));
        }
        if !extra.is_empty() {
            tags.push(extra.to_string());
        }
        tags.join("; ")
    };
    let cases: Vec<(String, Malformed)> = vec![
        (String::new(), Malformed::MissingTag("v")),
        (" ; ;".into(), Malformed::MissingTag("v")),
        ("garbage".into(), Malformed::Syntax("garbage".into())),
        (base("", "v=1"), Malformed::DuplicateTag("v")),
        (base("", "node=mx2"), Malformed::DuplicateTag("node")),
        (base("", "x=1"), Malformed::UnknownTag("x".into())),
        (base("", "Node=mx1"), Malformed::UnknownTag("Node".into())),
        (base("v", "v=2"), Malformed::Version("2".into())),
        (base("v", "v=2; future=yes"), Malformed::Version("2".into())),
        (base("engine", ""), Malformed::MissingTag("engine")),
        (base("sigs", ""), Malformed::MissingTag("sigs")),
        (base("result", ""), Malformed::MissingTag("result")),
        (base("node", ""), Malformed::MissingTag("node")),
        (base("t", ""), Malformed::MissingTag("t")),
        (base("mac", ""), Malformed::MissingTag("mac")),
        (
            base("result", "result=infected"),
            Malformed::Result(UnknownResult("infected".into())),
        ),
        (
            base("result", "result=Clean"),
            Malformed::Result(UnknownResult("Clean".into())),
        ),
        (base("t", "t=0123"), Malformed::Time("0123".into())),
        (base("t", "t=-5"), Malformed::Time("-5".into())),
        (base("t", "t=+5"), Malformed::Time("+5".into())),
        (base("t", "t="), Malformed::Time(String::new())),
        (base("t", "t=1.5"), Malformed::Time("1.5".into())),
        (
            base("t", "t=18446744073709551616"),
            Malformed::Time("18446744073709551616".into()),
        ),
        (base("mac", "mac=!!!!"), Malformed::Mac),
        (base("mac", "mac=AAAA"), Malformed::Mac),
        (base("mac", "mac="), Malformed::Mac),
        (
            base("node", "node="),
            Malformed::Field(FieldError::Empty { field: "node" }),
        ),
        (
            base("engine", "engine=a b"),
            Malformed::Field(FieldError::BadByte {
                field: "engine",
                byte: b' ',
            }),
        ),
        (
            base("sigs", &format!("sigs={}", "1".repeat(MAX_VALUE_LEN + 1))),
            Malformed::Field(FieldError::TooLong { field: "sigs" }),
        ),
    ];
    for (v, want) in cases {
        assert_eq!(check(&with(&v)), StampCheck::Malformed(want), "{v:?}");
    }
    // Edge values that read but fail the MAC.
    assert_eq!(check(&with(&base("t", "t=0"))), StampCheck::BadMac);
    let max = base("t", "t=18446744073709551615");
    assert_eq!(check(&with(&max)), StampCheck::BadMac);
    // Non-UTF-8 bytes in a value.
    let raw = [
        b"X-MXGuard-Stamp: v=1; engine=\xff\xfe; sigs=1\r\n".as_slice(),
        MSG,
    ]
    .concat();
    assert_eq!(
        check(&raw),
        StampCheck::Malformed(Malformed::Field(FieldError::BadByte {
            field: "engine",
            byte: 0xff
        }))
    );
}

#[test]
fn topmost_stamp_decides() {
    // The edge stamped with yesterday's signatures, the hub with today's.
    let edge = StampFields {
        sigs: "27122".into(),
        node: "edge1".into(),
        ..fields()
    };
    let hub = StampFields {
        node: "hub1".into(),
        time: fields().time + 60,
        ..fields()
    };
    let at_edge = add_stamp(MSG, &edge, &key(1)).unwrap();
    let at_hub = add_stamp(&at_edge, &hub, &key(1)).unwrap();
    assert_eq!(check(&at_hub), StampCheck::Valid(hub.clone()));
    // The other way round, the stale one is on top.
    let reversed = add_stamp(&add_stamp(MSG, &hub, &key(1)).unwrap(), &edge, &key(1)).unwrap();
    assert_eq!(
        check(&reversed),
        StampCheck::Stale {
            engine: "0.1.0".into(),
            sigs: "27122".into()
        }
    );
    // A broken stamp on top is not rescued by a good one below.
    let broken = [b"X-MXGuard-Stamp: v=1\r\n".as_slice(), &at_hub].concat();
    assert_eq!(
        check(&broken),
        StampCheck::Malformed(Malformed::MissingTag("engine"))
    );
    // A stamp further down the header block is still found.
    let lower = replace(&at_hub, "Subject:", "X-Other: 1\r\nSubject:");
    assert!(check(&lower).is_valid());
}

#[test]
fn stamps_outside_the_top_level_header_are_ignored() {
    let h = stamp_header(&fields(), MSG, &key(1)).unwrap();
    // Only in the body (here: an attached message's header).
    let m = [
        b"From: a@example.com\r\n\r\n".as_slice(),
        h.as_bytes(),
        b"\r\nbody\r\n",
    ]
    .concat();
    assert_eq!(check(&m), StampCheck::Missing);
    // A message starting with an empty line has no header at all.
    assert_eq!(
        check(&[b"\r\n".as_slice(), h.as_bytes()].concat()),
        StampCheck::Missing
    );
}

#[test]
fn messages_without_body_or_header() {
    for m in [
        b"".as_slice(),
        b"Subject: x",
        b"Subject: x\r\n",
        b"Subject: x\n\n",
        b"\r\n",
        b"\n\nonly body",
        b"no colon at all",
    ] {
        let s = stamped(m);
        assert!(s.ends_with(m));
        assert_eq!(check(&s), StampCheck::Valid(fields()), "{m:?}");
        assert_eq!(&*strip_stamps(&s), m);
    }
    assert_eq!(check(b""), StampCheck::Missing);
}

#[test]
fn leading_whitespace_lines_stay_above_the_stamp() {
    // Malformed: the message starts with continuation lines. Prepended, they
    // would continue the stamp's value (" x=1" an unknown tag).
    let m = b" x=1\r\n\tmore\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n";
    let s = stamped(m);
    assert!(s.starts_with(b" x=1\r\n\tmore\r\nX-MXGuard-Stamp: "));
    assert_eq!(check(&s), StampCheck::Valid(fields()));
    assert_eq!(&*strip_stamps(&s), m.as_slice());
    // Nothing but such lines, and no final line break: prepended after all.
    let s = stamped(b" x=1");
    assert!(s.starts_with(b"X-MXGuard-Stamp: "));
    assert_eq!(check(&s), StampCheck::Malformed(Malformed::Mac));
}

#[test]
fn body_canonicalisation() {
    use crate::message::{body, body_hash, split};
    let h = |b: &[u8]| body_hash(b);
    assert_eq!(h(b""), h(b"\r\n\r\n"));
    assert_eq!(h(b"a\r\nb\r\n"), h(b"a\nb\n"));
    assert_eq!(h(b"a\r\nb\r\n"), h(b"a\nb"));
    assert_eq!(h(b"a\r\nb\r\n"), h(b"a\r\nb\r\n\n\r\n\n"));
    assert_ne!(h(b"a\r\nb\r\n"), h(b"a\r\n\r\nb\r\n"));
    assert_ne!(h(b"a\r\n"), h(b"a \r\n"));
    assert_ne!(h(b"a\r\n"), h(b"a\r\r\n"), "a lone CR is content");
    assert_eq!(split(b"A: b\r\n\r\nbody"), (6, 8));
    assert_eq!(split(b"A: b\n\nbody"), (5, 6));
    assert_eq!(split(b"A: b\r\n\nbody"), (6, 7));
    assert_eq!(split(b"A: b"), (4, 4));
    assert_eq!(body(b"\nx"), b"x");
    // A whitespace-only line is a continuation, not the end of the header.
    assert_eq!(body(b"A: b\r\n \r\nC: d\r\n\r\nx"), b"x");
}

#[test]
fn key_basics() {
    let k = StampKey::generate().unwrap();
    let k2 = StampKey::generate().unwrap();
    assert_ne!(k.fingerprint(), k2.fingerprint());
    assert_eq!(k.fingerprint().len(), 16);
    let back = StampKey::from_base64(&format!("  {}\n", k.to_base64())).unwrap();
    assert_eq!(back.fingerprint(), k.fingerprint());
    assert!(!format!("{k:?}").contains(&k.to_base64()));
    assert!(matches!(
        StampKey::from_bytes(&[0; 31]),
        Err(KeyError::Length { len: 31 })
    ));
    assert!(StampKey::from_bytes(&[0; MAX_KEY_LEN]).is_ok());
    assert!(StampKey::from_bytes(&[0; MAX_KEY_LEN + 1]).is_err());
    assert!(matches!(
        StampKey::from_base64("not base64!"),
        Err(KeyError::Base64)
    ));
    // Longer keys work like any other.
    let long = StampKey::from_bytes(&[7; 100]).unwrap();
    let m = add_stamp(MSG, &fields(), &long).unwrap();
    assert!(verify(&m, &long.into(), &current(), &[], None, at(0)).is_valid());
}

#[test]
fn load_or_create_is_stable_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/sub/stamp.key");
    let a = StampKey::load_or_create(&path).unwrap();
    let b = StampKey::load_or_create(&path).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(
        StampKey::load(&path).unwrap().fingerprint(),
        a.fingerprint()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{}\n", a.to_base64()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("stamp.key")]);
    // A key written by hand (another node's) is read as it is.
    let other = dir.path().join("other.key");
    std::fs::write(&other, format!("{}\n", key(9).to_base64())).unwrap();
    assert_eq!(
        StampKey::load_or_create(&other).unwrap().fingerprint(),
        key(9).fingerprint()
    );
}

#[test]
fn a_bad_key_file_is_an_error_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("empty.key", b"".as_slice()),
        ("short.key", b"AAAA\n"),
        ("junk.key", b"this is not a key\n"),
        ("binary.key", &[0xff; 40]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = StampKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, KeyError::BadKeyFile { .. }), "{name}: {err}");
        assert_eq!(std::fs::read(&path).unwrap(), content, "{name} kept");
    }
    let big = dir.path().join("big.key");
    std::fs::write(&big, vec![b'A'; MAX_KEY_FILE as usize + 1]).unwrap();
    assert!(matches!(
        StampKey::load(&big),
        Err(KeyError::BadKeyFile { .. })
    ));
    assert!(matches!(
        StampKey::load_or_create(dir.path()),
        Err(KeyError::BadKeyFile { .. })
    ));
    assert!(matches!(
        StampKey::load(dir.path().join("missing.key")),
        Err(KeyError::Io { .. })
    ));
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs every entry point on `m` and checks the properties that hold for any input.
fn exercise(m: &[u8], ring: &KeyRing) {
    let _ = verify(
        m,
        ring,
        &current(),
        &["mx1".into()],
        Some(Duration::from_secs(60)),
        at(5),
    );
    let stripped = strip_stamps(m);
    assert_eq!(
        check(&stripped),
        StampCheck::Missing,
        "strip leaves no stamp: {m:?}"
    );
    assert!(
        matches!(strip_stamps(&stripped), Cow::Borrowed(_)),
        "strip is idempotent"
    );
    let s = add_stamp(m, &fields(), ring.signing_key()).unwrap();
    // Except a message of nothing but lines starting with whitespace and no
    // final line break: its text continues the stamp field (which then fails
    // to read, a rescan, or adds only whitespace and empty tags; never other
    // values).
    let degenerate = message::top(m) == 0 && m.first().is_some_and(|&b| b == b' ' || b == b'\t');
    match verify(&s, ring, &current(), &[], None, at(0)) {
        StampCheck::Valid(f) => assert_eq!(f, fields()),
        StampCheck::Malformed(_) if degenerate => {}
        other => panic!("stamping {m:?} gave {other:?}"),
    }
    if !degenerate {
        assert_eq!(&*strip_stamps(&s), &*strip_stamps(m));
    }
}

#[test]
fn never_panics_on_random_or_truncated_input() {
    let ring = KeyRing::from(key(1));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // The mail alphabet, weighted towards what the parsers look at.
    let alphabet: &[u8] = b"\r\n\r\n\r\n  \t::;;;==aAbXx-<>@.0123456789\xff\x00";
    let words: &[&[u8]] = &[
        b"X-MXGuard-Stamp:",
        b"x-mxguard-stamp :",
        b"Message-ID:",
        b"v=1;",
        b"v=2;",
        b"engine=0.1.0;",
        b"sigs=27123;",
        b"result=clean;",
        b"node=mx1;",
        b"t=1767225600;",
        b"mac=",
        b"\r\n ",
        b"\r\n\r\n",
        b"\n\n",
    ];
    for _ in 0..3000 {
        let mut m = Vec::new();
        for _ in 0..rng.below(40) {
            if rng.below(3) == 0 {
                m.extend_from_slice(words[rng.below(words.len())]);
            } else {
                m.push(alphabet[rng.below(alphabet.len())]);
            }
        }
        exercise(&m, &ring);
        let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        exercise(&bytes, &ring);
    }
    // Every prefix of a stamped message, LF and CRLF, and byte mutations.
    let s = stamped(&stamped(MSG));
    for m in [s.clone(), to_lf(&s)] {
        for i in 0..=m.len() {
            exercise(&m[..i], &ring);
        }
        for _ in 0..2000 {
            let mut x = m.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(x.len());
                x[i] = alphabet[rng.below(alphabet.len())];
            }
            exercise(&x, &ring);
        }
    }
}

#[test]
fn content_type_and_encoding_are_covered() {
    let ring = KeyRing::from(StampKey::generate().unwrap());
    let now = std::time::SystemTime::now();
    let fields = StampFields {
        engine: "1".into(),
        sigs: "2".into(),
        result: StampResult::Clean,
        node: "n".into(),
        time: unix_time(now),
    };
    let msg = b"Message-ID: <a@b>\r\nContent-Type: text/plain\r\n\r\nQUJD\r\n";
    let stamped = add_stamp(msg, &fields, ring.signing_key()).unwrap();
    let current = Current {
        engine: "1".into(),
        sigs: "2".into(),
    };
    assert!(verify(&stamped, &ring, &current, &[], None, now).is_valid());
    let s = String::from_utf8(stamped).unwrap();
    let recoded = s.replace(
        "Content-Type: text/plain\r\n",
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",
    );
    assert_eq!(
        verify(recoded.as_bytes(), &ring, &current, &[], None, now),
        StampCheck::BadMac
    );
    let retyped = s.replace("text/plain", "application/x-msdownload");
    assert_eq!(
        verify(retyped.as_bytes(), &ring, &current, &[], None, now),
        StampCheck::BadMac
    );
}
