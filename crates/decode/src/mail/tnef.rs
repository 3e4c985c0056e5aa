//! MS-TNEF (`winmail.dat`): a signature, a key, then attributes
//! `level(1) id(4) length(4) data checksum(2)` (little-endian). Attachments
//! start at `attAttachRenddata`; their bytes are `attAttachData`, their name
//! `attAttachTitle`, `attAttachTransportFilename`, or the MAPI property
//! `PR_ATTACH_LONG_FILENAME` in `attAttachment`. Message bodies come from
//! `attBody` and the MAPI properties `PR_BODY`, `PR_BODY_HTML`, `PR_RTF_COMPRESSED`.
use crate::bytes::{le16, le32};

use crate::{ChildMeta, Extractor, Flow};

/// TNEF signature 0x223E9F78, little-endian.
pub(crate) const SIGNATURE: [u8; 4] = [0x78, 0x9f, 0x3e, 0x22];
/// Fewer bytes than an attribute header after the last attribute are padding.
const MAX_TRAILING_PADDING: usize = 8;
/// At most this many MAPI properties are read from one attribute.
const MAX_MAPI_PROPS: u32 = 4096;
/// At most this many values of one multi-valued MAPI property.
const MAX_MAPI_VALUES: u32 = 4096;

// Attribute ids (low 16 bits of the attribute id).
const ATT_BODY: u16 = 0x800c;
const ATT_ATTACH_DATA: u16 = 0x800f;
const ATT_ATTACH_TITLE: u16 = 0x8010;
const ATT_ATTACH_TRANSPORT_FILENAME: u16 = 0x9001;
const ATT_ATTACH_RENDDATA: u16 = 0x9002;
const ATT_MSG_PROPS: u16 = 0x9003;
const ATT_ATTACHMENT: u16 = 0x9005;

// MAPI property ids.
const PR_BODY: u16 = 0x1000;
const PR_RTF_COMPRESSED: u16 = 0x1009;
const PR_BODY_HTML: u16 = 0x1013;
const PR_ATTACH_DATA_BIN: u16 = 0x3701;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;

/// A string attribute or property: NUL-terminated 8-bit (or UTF-16LE when `wide`).
fn string(d: &[u8], wide: bool) -> String {
    if wide {
        let units: Vec<u16> = d
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        let end = memchr::memchr(0, d).unwrap_or(d.len());
        crate::codec::decode_unknown(&d[..end]).trim().to_string()
    }
}

/// One MAPI property value of interest.
struct Prop<'a> {
    id: u16,
    ptype: u16,
    value: &'a [u8],
}

/// Parses a MAPI property list, calling `f` for every single value of a
/// variable-length property (strings, binaries, objects). Stops at the first
/// inconsistency; returns false then.
fn mapi_props<'a>(d: &'a [u8], mut f: impl FnMut(Prop<'a>)) -> bool {
    let Some(count) = le32(d, 0) else {
        return false;
    };
    let mut p = 4usize;
    for _ in 0..count.min(MAX_MAPI_PROPS) {
        let (Some(ptype), Some(id)) = (le16(d, p), le16(d, p + 2)) else {
            return false;
        };
        p += 4;
        if id >= 0x8000 {
            // named property: GUID, kind, then an id or a name
            p += 16;
            let Some(kind) = le32(d, p) else { return false };
            p += 4;
            if kind == 0 {
                p += 4;
            } else {
                let Some(len) = le32(d, p) else { return false };
                p += 4;
                let Some(q) = usize::try_from(len)
                    .ok()
                    .and_then(|l| p.checked_add(l.next_multiple_of(4)))
                else {
                    return false;
                };
                p = q;
            }
        }
        let multi = ptype & 0x1000 != 0;
        let base = ptype & !0x1000;
        let fixed = match base {
            0x0001 | 0x0002 | 0x0003 | 0x0004 | 0x000a | 0x000b => Some(4),
            0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => Some(8),
            0x0048 => Some(16),
            0x000d | 0x001e | 0x001f | 0x0102 => None,
            _ => return false,
        };
        let values = if multi || fixed.is_none() {
            let Some(n) = le32(d, p) else { return false };
            p += 4;
            n
        } else {
            1
        };
        if values > MAX_MAPI_VALUES {
            return false;
        }
        for _ in 0..values {
            match fixed {
                Some(size) => p = p.saturating_add(size),
                None => {
                    let Some(len) = le32(d, p) else { return false };
                    p += 4;
                    let Ok(len) = usize::try_from(len) else {
                        return false;
                    };
                    let Some(end) = p.checked_add(len) else {
                        return false;
                    };
                    let Some(value) = d.get(p..end) else {
                        return false;
                    };
                    f(Prop {
                        id,
                        ptype: base,
                        value,
                    });
                    let Some(next) = p.checked_add(len.next_multiple_of(4)) else {
                        return false;
                    };
                    p = next;
                }
            }
        }
        if p > d.len() {
            return false;
        }
    }
    true
}

/// An attachment being collected.
#[derive(Default)]
struct Attachment<'a> {
    data: Option<&'a [u8]>,
    title: Option<String>,
    transport: Option<String>,
    long_name: Option<String>,
    short_name: Option<String>,
}

impl Attachment<'_> {
    fn name(&self) -> Option<String> {
        [
            &self.long_name,
            &self.transport,
            &self.short_name,
            &self.title,
        ]
        .into_iter()
        .flatten()
        .find(|n| !n.is_empty())
        .cloned()
    }
}

struct Out<'e, 'w, 'o, 'v> {
    ex: &'e mut Extractor<'w, 'o, 'v>,
    attachments: u32,
    bodies: u32,
}

impl Out<'_, '_, '_, '_> {
    fn attachment(&mut self, a: &Attachment<'_>) -> Flow {
        let Some(data) = a.data else {
            return Flow::Continue;
        };
        self.attachments += 1;
        let meta = match a.name() {
            Some(n) => ChildMeta::named(n),
            None => ChildMeta::at(format!("attachment[{}]", self.attachments)),
        };
        self.ex.child(meta, data)
    }

    fn body(&mut self, what: &str, declared: &str, data: &[u8], text: Option<String>) -> Flow {
        if data.is_empty() {
            return Flow::Continue;
        }
        self.bodies += 1;
        let meta = ChildMeta {
            segment: format!("{what}[{}]", self.bodies),
            declared_type: Some(declared.into()),
            text,
            ..Default::default()
        };
        self.ex.child(meta, data)
    }
}

/// Hands over attachments and message bodies of a TNEF stream. Every length is
/// checked against the input; children borrow from it. A stream cut short or
/// an unreadable property list is reported as `Heuristics.Broken.Tnef` after
/// what was read. Never panics.
pub(crate) fn extract_tnef(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    if !data.starts_with(&SIGNATURE) {
        return;
    }
    let mut out = Out {
        ex,
        attachments: 0,
        bodies: 0,
    };
    let mut p = 6usize; // signature + key
    let mut cur: Option<Attachment<'_>> = None;
    let mut problem: Option<String> = None;
    while p < data.len() {
        let (Some(&level), Some(id), Some(len)) =
            (data.get(p), le32(data, p + 1), le32(data, p + 5))
        else {
            // A few trailing bytes (a line end added in transit) are not damage.
            if data.len() - p > MAX_TRAILING_PADDING {
                problem = Some(format!("attribute header cut short at offset {p}"));
            }
            break;
        };
        let start = p + 9;
        let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
            problem = Some(format!("attribute length {len} at offset {p}"));
            break;
        };
        let Some(value) = data.get(start..end) else {
            problem = Some(format!(
                "attribute at offset {p} runs {len} bytes past the end"
            ));
            // Hand over what is there for a truncated attachment.
            if (id & 0xffff) as u16 == ATT_ATTACH_DATA {
                if let Some(a) = cur.as_mut() {
                    a.data = data.get(start..);
                }
            }
            break;
        };
        p = end + 2; // checksum
        let kind = (id & 0xffff) as u16;
        let _ = level;
        let mut flow = Flow::Continue;
        match kind {
            ATT_ATTACH_RENDDATA => {
                if let Some(a) = cur.take() {
                    flow = out.attachment(&a);
                }
                cur = Some(Attachment::default());
            }
            ATT_ATTACH_DATA => cur.get_or_insert_with(Default::default).data = Some(value),
            ATT_ATTACH_TITLE => {
                cur.get_or_insert_with(Default::default).title = Some(string(value, false))
            }
            ATT_ATTACH_TRANSPORT_FILENAME => {
                cur.get_or_insert_with(Default::default).transport = Some(string(value, false))
            }
            ATT_ATTACHMENT => {
                let a = cur.get_or_insert_with(Default::default);
                let mut embedded: Option<&[u8]> = None;
                let ok = mapi_props(value, |pr| match pr.id {
                    PR_ATTACH_LONG_FILENAME => {
                        a.long_name = Some(string(pr.value, pr.ptype == 0x1f))
                    }
                    PR_ATTACH_FILENAME => a.short_name = Some(string(pr.value, pr.ptype == 0x1f)),
                    PR_ATTACH_DATA_BIN => {
                        // PT_OBJECT starts with a 16-byte interface id.
                        let v = if pr.ptype == 0x000d {
                            pr.value.get(16..).unwrap_or_default()
                        } else {
                            pr.value
                        };
                        embedded = Some(v);
                    }
                    _ => {}
                });
                if a.data.is_none() {
                    a.data = embedded;
                }
                if !ok && problem.is_none() {
                    problem = Some("unreadable attachment properties".into());
                }
            }
            ATT_BODY => {
                let t = string(value, false);
                flow = out.body("body", "text/plain", value, Some(t));
            }
            ATT_MSG_PROPS => {
                let mut bodies: Vec<(&str, &str, &[u8], Option<String>)> = Vec::new();
                let ok = mapi_props(value, |pr| match pr.id {
                    PR_BODY => bodies.push((
                        "body",
                        "text/plain",
                        pr.value,
                        Some(string(pr.value, pr.ptype == 0x1f)),
                    )),
                    PR_BODY_HTML => bodies.push(("body", "text/html", pr.value, None)),
                    PR_RTF_COMPRESSED => bodies.push(("rtf", "application/rtf", pr.value, None)),
                    _ => {}
                });
                for (what, declared, d, text) in bodies {
                    if out.body(what, declared, d, text) == Flow::Stop {
                        return;
                    }
                }
                if !ok && problem.is_none() {
                    problem = Some("unreadable message properties".into());
                }
            }
            _ => {}
        }
        if flow == Flow::Stop || out.ex.done() {
            return;
        }
    }
    if let Some(a) = cur.take() {
        if out.attachment(&a) == Flow::Stop {
            return;
        }
    }
    if let Some(pr) = problem {
        out.ex.broken("Tnef", &pr);
    }
}
