//! A tiny authoritative DNS responder on loopback UDP for the auth tests:
//! A, AAAA, TXT (several strings per record), MX and PTR answers from a
//! table; NODATA for a known name without the asked type; NXDOMAIN (with an
//! SOA, so negative answers can be cached) for unknown names; silence for
//! names in `drop` (a timeout) and SERVFAIL for names in `servfail`.
//! Counts the queries it receives.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub enum Rec {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// One TXT record: its character strings (each at most 255 bytes).
    Txt(Vec<String>),
    Mx(u16, String),
    Ptr(String),
}

#[derive(Default, Clone)]
pub struct Zone {
    pub records: HashMap<String, Vec<Rec>>,
    /// Names (and everything under them) that get no answer at all.
    pub drop: HashSet<String>,
    pub servfail: HashSet<String>,
}

impl Zone {
    pub fn add(&mut self, name: &str, rec: Rec) -> &mut Self {
        self.records
            .entry(name.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(rec);
        self
    }

    /// A TXT record, split into 255-byte strings as DNS needs.
    pub fn txt(&mut self, name: &str, text: &str) -> &mut Self {
        let parts = text
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        self.add(name, Rec::Txt(parts))
    }

    pub fn a(&mut self, name: &str, ip: &str) -> &mut Self {
        self.add(name, Rec::A(ip.parse().unwrap()))
    }
}

pub struct Dns {
    pub port: u16,
    pub queries: Arc<AtomicUsize>,
    /// Names asked, in order (lowercase, no trailing dot).
    pub asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Dns {
    pub fn addr(&self) -> std::net::SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    pub fn count(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn start(zone: Zone) -> Dns {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (st, q, a) = (stop.clone(), queries.clone(), asked.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !st.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            q.fetch_add(1, Ordering::Relaxed);
            if let Some((name, resp)) = answer(&buf[..n], &zone) {
                a.lock().unwrap().push(name);
                if let Some(r) = resp {
                    let _ = sock.send_to(&r, from);
                }
            }
        }
    });
    Dns {
        port,
        queries,
        asked,
        stop,
    }
}

fn name_bytes(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

fn under(name: &str, set: &HashSet<String>) -> bool {
    set.iter()
        .any(|d| name == d || name.ends_with(&format!(".{d}")))
}

/// (asked name, response or None for silence).
fn answer(q: &[u8], zone: &Zone) -> Option<(String, Option<Vec<u8>>)> {
    if q.len() < 12 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    let qend = pos + 4;
    let name = labels.join(".");
    if under(&name, &zone.drop) {
        return Some((name, None));
    }
    let mut rcode: u8 = 0;
    let mut rdatas: Vec<Vec<u8>> = Vec::new();
    if under(&name, &zone.servfail) {
        rcode = 2;
    } else if let Some(recs) = zone.records.get(&name) {
        for r in recs {
            match (qtype, r) {
                (1, Rec::A(ip)) => rdatas.push(ip.octets().to_vec()),
                (28, Rec::Aaaa(ip)) => rdatas.push(ip.octets().to_vec()),
                (16, Rec::Txt(parts)) => {
                    let mut d = Vec::new();
                    for p in parts {
                        let b = &p.as_bytes()[..p.len().min(255)];
                        d.push(b.len() as u8);
                        d.extend_from_slice(b);
                    }
                    rdatas.push(d);
                }
                (15, Rec::Mx(pref, host)) => {
                    let mut d = pref.to_be_bytes().to_vec();
                    d.extend(name_bytes(host));
                    rdatas.push(d);
                }
                (12, Rec::Ptr(host)) => rdatas.push(name_bytes(host)),
                _ => {}
            }
        }
    } else {
        rcode = 3;
    }
    let mut r = Vec::with_capacity(512);
    r.extend_from_slice(&q[..2]);
    r.extend_from_slice(&[0x84 | (q[2] & 0x01), 0x80 | rcode]); // QR AA (RD copied), RA
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&(rdatas.len() as u16).to_be_bytes());
    let soa = rdatas.is_empty() && rcode != 2;
    r.extend_from_slice(&[0, u8::from(soa), 0, 0]);
    r.extend_from_slice(&q[12..qend]);
    for d in rdatas {
        r.extend_from_slice(&[0xC0, 0x0C]);
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]); // TTL 3600
        r.extend_from_slice(&(d.len() as u16).to_be_bytes());
        r.extend_from_slice(&d);
    }
    if soa {
        // Negative answers: an SOA for "test." with minimum 300 s.
        let mut d = name_bytes("ns.test");
        d.extend(name_bytes("hostmaster.test"));
        for v in [1u32, 3600, 600, 86400, 300] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        r.extend(name_bytes("test"));
        r.extend_from_slice(&6u16.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 1, 0x2c]); // TTL 300
        r.extend_from_slice(&(d.len() as u16).to_be_bytes());
        r.extend_from_slice(&d);
    }
    Some((name, Some(r)))
}
