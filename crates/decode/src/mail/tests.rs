//! Reader tests through the public walk.
use crate::{DecodeOptions, Decoded, Decoder};

pub(super) fn decode(input: &[u8]) -> Decoded<'_> {
    Decoder::new(DecodeOptions {
        text: true,
        ..Default::default()
    })
    .decode(input)
}

/// The Debian clamav-testfiles (installed in CI): each encoding of clam.exe
/// must yield an object whose bytes are clam.exe. Fails when they are missing.
#[test]
fn clamav_testfiles_yield_clam_exe() {
    let dir = std::path::Path::new("/usr/share/clamav-testfiles");
    let exe = std::fs::read(dir.join("clam.exe")).expect("clamav-testfiles: clam.exe missing");
    for f in [
        "clam.mail",
        "clam.exe.mbox.base64",
        "clam.exe.mbox.uu",
        "clam.exe.binhex",
        "clam.tnef",
    ] {
        let input = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let d = decode(&input);
        let found = d
            .objects
            .iter()
            .find(|o| o.depth > 0 && o.data[..] == exe[..]);
        assert!(
            found.is_some(),
            "{f}: no object equals clam.exe; objects: {:?}; findings: {:?}",
            d.objects
                .iter()
                .map(|o| (o.location.clone(), o.file_type.name(), o.data.len()))
                .collect::<Vec<_>>(),
            d.findings
                .iter()
                .map(|f| (&f.name, &f.detail))
                .collect::<Vec<_>>()
        );
        eprintln!("{f}: clam.exe at {}", found.map_or("", |o| &o.location));
    }
}

fn locs(d: &Decoded<'_>) -> Vec<String> {
    d.objects.iter().map(|o| o.location.clone()).collect()
}

#[test]
fn clamav_binhex_and_tnef_have_no_damage() {
    let dir = std::path::Path::new("/usr/share/clamav-testfiles");
    for f in ["clam.exe.binhex", "clam.tnef", "clam.mail"] {
        let input = std::fs::read(dir.join(f)).expect("clamav-testfiles missing");
        let d = decode(&input);
        assert!(
            d.findings
                .iter()
                .all(|x| !x.name.starts_with("Heuristics.Broken")),
            "{f}: {:?}",
            d.findings.iter().map(|x| &x.detail).collect::<Vec<_>>()
        );
    }
}

#[test]
fn nested_multipart_numbering_and_names() {
    let m = b"From: a\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\npreamble\r\n--outer\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 soft=\r\nbreak\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--inner\r\ncontent-type: APPLICATION/octet-stream;\r\n\tname=\"a.exe\"\r\nCONTENT-TRANSFER-ENCODING: Base64\r\n\r\nTVqQ\r\n--inner--\r\nepilogue\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhello\r\n--outer--\r\n";
    let d = decode(m);
    let l = locs(&d);
    assert!(l.contains(&"part[1]".into()), "{l:?}");
    assert!(l.contains(&"part[2.1]".into()), "{l:?}");
    assert!(l.contains(&"part[2.2]/a.exe".into()), "{l:?}");
    assert!(l.contains(&"part[3]".into()), "{l:?}");
    assert!(l.contains(&"part[3]/part[1]".into()), "{l:?}");
    let p1 = d.objects.iter().find(|o| o.location == "part[1]").unwrap();
    assert_eq!(p1.text.as_deref(), Some("caf\u{e9} softbreak"));
    let exe = d
        .objects
        .iter()
        .find(|o| o.location == "part[2.2]/a.exe")
        .unwrap();
    assert_eq!(&exe.data[..], b"MZ\x90");
    assert_eq!(
        exe.declared_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(exe.name.as_deref(), Some("a.exe"));
}

#[test]
fn missing_closing_boundary_runs_to_end() {
    let m = b"From: a\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n--b \nContent-Type: text/plain\n\nlast part\nno end";
    let d = decode(m);
    let last = d.objects.iter().find(|o| o.location == "part[2]").unwrap();
    assert_eq!(&last.data[..], b"last part\nno end");
}

#[test]
fn multipart_without_delimiters_is_one_part() {
    let m = b"From: a\nContent-Type: multipart/mixed; boundary=zzz\n\njust text\n";
    let d = decode(m);
    assert_eq!(locs(&d), vec!["".to_string(), "part[1]".into()]);
}

#[test]
fn hostile_nesting_is_linear_and_bounded() {
    let n = 100_000;
    let mut m = b"From: a\n".to_vec();
    for i in 0..n {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n").as_bytes(),
        );
    }
    m.extend_from_slice(b"\nbottom\n");
    let t = std::time::Instant::now();
    let d = decode(&m);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
    assert!(d
        .findings
        .iter()
        .any(|f| f.name == "Heuristics.Limits.Exceeded.MaxRecursion"));
    assert!(d.objects.len() >= 2);
}

#[test]
fn ten_thousand_parts_hit_max_files() {
    let mut m = b"From: a\nContent-Type: multipart/mixed; boundary=b\n\n".to_vec();
    for i in 0..10_001 {
        m.extend_from_slice(format!("--b\n\npart {i}\n").as_bytes());
    }
    m.extend_from_slice(b"--b--\n");
    let t = std::time::Instant::now();
    let d = decode(&m);
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    assert!(d
        .findings
        .iter()
        .any(|f| f.name == "Heuristics.Limits.Exceeded.MaxFiles"));
}

#[test]
fn megabyte_header_line() {
    let mut m = b"From: a\nSubject: ".to_vec();
    m.extend(std::iter::repeat_n(b'x', 1 << 20));
    m.extend_from_slice(b"\nContent-Type: text/plain; name=");
    m.extend(std::iter::repeat_n(b'y', 1 << 20));
    m.extend_from_slice(b"\n\nbody\n");
    let t = std::time::Instant::now();
    let d = decode(&m);
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    assert!(d
        .objects
        .iter()
        .any(|o| o.location.starts_with("part[1]") && &o.data[..] == b"body\n"));
}

#[test]
fn base64_nested_messages_are_reparsed_by_the_walk() {
    // 30 levels of message/rfc822 parts, each base64-encoded.
    let mut inner = b"From: x\nContent-Type: text/plain\n\nbottom\n".to_vec();
    for _ in 0..30 {
        let enc = b64(&inner);
        let mut m = b"From: x\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n".to_vec();
        m.extend_from_slice(&enc);
        m.extend_from_slice(b"\n--q--\n");
        inner = m;
    }
    let d = decode(&inner);
    assert!(d
        .findings
        .iter()
        .any(|f| f.name == "Heuristics.Limits.Exceeded.MaxRecursion"));
    assert!(d.objects.iter().any(|o| o.depth == 17));
}

fn b64(data: &[u8]) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push(b'\n');
        }
        let v = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[((v >> (18 - 6 * k)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// Pseudo-random mutations of a few messages never panic.
#[test]
fn mutations_never_panic() {
    let seeds: [&[u8]; 4] = [
        b"From: a\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/x; name*0*=utf-8''%41; name*1=b\nContent-Transfer-Encoding: base64\n\nTVqQ==\n--b\nContent-Type: message/rfc822\n\nFrom: c\n\nx\n--b--\n",
        b"x\x9f>\"\x01\x00\x01\x02\x90\x06\x00\x00\x00\x00\x00\x00\x00\x02\x0f\x80\x06\x00\x03\x00\x00\x00abc\x00\x00",
        b"(This file must be converted with BinHex 4.0)\n:#'0XB@dZCAKP!%9B43\"$E'&Y!!!!!!)J!!!!!EY969T3!!)!!!!%!!m!rrm!!,J:",
        b"From x\nFrom: a\n\nbegin 644 a\n#86)C\n`\nend\nFrom y\n\n",
    ];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for seed in seeds {
        for _ in 0..300 {
            let mut m = seed.to_vec();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % m.len();
                match x % 3 {
                    0 => m[i] = (x >> 24) as u8,
                    1 => m.truncate(i),
                    _ => m.insert(i, (x >> 32) as u8),
                }
                if m.is_empty() {
                    break;
                }
            }
            let _ = decode(&m);
            for k in [
                crate::Kind::Mail,
                crate::Kind::Mbox,
                crate::Kind::Uuencode,
                crate::Kind::BinHex,
                crate::Kind::Tnef,
            ] {
                struct Nop;
                impl crate::Visitor for Nop {
                    fn object(&mut self, _: &crate::ScanObject<'_>) -> crate::Flow {
                        crate::Flow::Continue
                    }
                    fn finding(&mut self, _: mxguard_types::Finding) -> crate::Flow {
                        crate::Flow::Continue
                    }
                }
                Decoder::default().walk_as(k, &m, &mut Nop);
            }
        }
    }
}

/// Builds one TNEF attribute.
fn tnef_attr(level: u8, id: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![level];
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    let sum: u32 = data.iter().map(|&b| u32::from(b)).sum();
    v.extend_from_slice(&(sum as u16).to_le_bytes());
    v
}

#[test]
fn tnef_attachments_names_and_bodies() {
    let mut t = vec![0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00];
    t.extend(tnef_attr(1, 0x0002_800c, b"message body text\0"));
    // attachment 1: title + data + MAPI long file name (unicode)
    t.extend(tnef_attr(2, 0x0006_9002, &[0; 14]));
    t.extend(tnef_attr(2, 0x0001_8010, b"LONGFI~1.EXE\0"));
    t.extend(tnef_attr(2, 0x0006_800f, b"MZ first"));
    let name: Vec<u8> = "long file name.exe\0"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let mut props = 1u32.to_le_bytes().to_vec();
    props.extend_from_slice(&0x001fu16.to_le_bytes());
    props.extend_from_slice(&0x3707u16.to_le_bytes());
    props.extend_from_slice(&1u32.to_le_bytes());
    props.extend_from_slice(&(name.len() as u32).to_le_bytes());
    props.extend_from_slice(&name);
    while !props.len().is_multiple_of(4) {
        props.push(0);
    }
    t.extend(tnef_attr(2, 0x0006_9005, &props));
    // attachment 2: only a title
    t.extend(tnef_attr(2, 0x0006_9002, &[0; 14]));
    t.extend(tnef_attr(2, 0x0001_8010, b"second.txt\0"));
    t.extend(tnef_attr(2, 0x0006_800f, b"second data"));
    let d = decode(&t);
    let l = locs(&d);
    assert!(l.contains(&"long file name.exe".into()), "{l:?}");
    assert!(l.contains(&"second.txt".into()), "{l:?}");
    assert!(l.contains(&"body[1]".into()), "{l:?}");
    assert!(d
        .findings
        .iter()
        .all(|f| !f.name.starts_with("Heuristics.Broken")));
    // A length running past the end: what is there is handed over, damage reported.
    let mut bad = t.clone();
    bad.extend(tnef_attr(2, 0x0006_9002, &[0; 14]));
    let mut a = tnef_attr(2, 0x0006_800f, b"third");
    a[5] = 0xff; // length 255
    a[6] = 0xff;
    bad.extend(a);
    let d = decode(&bad);
    assert!(d
        .findings
        .iter()
        .any(|f| f.name == "Heuristics.Broken.Tnef"));
}

#[test]
fn binhex_bad_crc_still_hands_over_data() {
    let good = std::fs::read("/usr/share/clamav-testfiles/clam.exe.binhex")
        .expect("clamav-testfiles missing");
    // Flip one 6-bit character inside the data fork (well after the header).
    let mut bad = good.clone();
    let colon = bad.iter().position(|&c| c == b':').unwrap();
    let i = colon + 200;
    bad[i] = if bad[i] == b'!' { b'"' } else { b'!' };
    let d = decode(&bad);
    assert!(d.objects.iter().any(|o| o.location == "clam.exe"));
    assert!(
        d.findings
            .iter()
            .any(|f| f.name == "Heuristics.Broken.BinHex"),
        "{:?}",
        d.findings
    );
}

#[test]
fn mbox_splits_messages() {
    let m = b"From a@b Mon\nFrom: a\nSubject: one\n\nbody one\nFrom c@d Tue\nSubject: two\n\nbody two\n";
    let d = decode(m);
    let l = locs(&d);
    assert!(
        l.contains(&"msg[1]".into()) && l.contains(&"msg[2]".into()),
        "{l:?}"
    );
    assert!(l.contains(&"msg[2]/part[1]".into()), "{l:?}");
    let one = d.objects.iter().find(|o| o.location == "msg[1]").unwrap();
    assert!(one.data.starts_with(b"From: a\n") && one.data.ends_with(b"body one\n"));
}
