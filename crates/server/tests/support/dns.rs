//! A tiny authoritative DNS responder on loopback UDP for DNSBL tests: A and
//! TXT answers from a fixed table, NXDOMAIN for everything else.

use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct Dns {
    pub port: u16,
    pub queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `a`: name (lowercase, no trailing dot) → A answers; `txt`: name → text.
pub fn start(a: HashMap<String, Vec<Ipv4Addr>>, txt: HashMap<String, String>) -> Dns {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicUsize::new(0));
    let (st, q) = (stop.clone(), queries.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !st.load(Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            q.fetch_add(1, Ordering::Relaxed);
            if let Some(resp) = answer(&buf[..n], &a, &txt) {
                let _ = sock.send_to(&resp, from);
            }
        }
    });
    Dns {
        port,
        queries,
        stop,
    }
}

fn answer(
    q: &[u8],
    a: &HashMap<String, Vec<Ipv4Addr>>,
    txt: &HashMap<String, String>,
) -> Option<Vec<u8>> {
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
    let mut rdatas: Vec<Vec<u8>> = Vec::new();
    let found = a.contains_key(&name) || txt.contains_key(&name);
    if qtype == 1 {
        for ip in a.get(&name).into_iter().flatten() {
            rdatas.push(ip.octets().to_vec());
        }
    } else if qtype == 16 {
        if let Some(t) = txt.get(&name) {
            let mut d = vec![t.len().min(255) as u8];
            d.extend_from_slice(&t.as_bytes()[..t.len().min(255)]);
            rdatas.push(d);
        }
    }
    let mut r = Vec::with_capacity(512);
    r.extend_from_slice(&q[..2]);
    let rcode: u8 = if found { 0 } else { 3 };
    r.extend_from_slice(&[0x84, 0x80 | rcode]); // response, authoritative, RD copied loosely, RA
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&(rdatas.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&q[12..qend]);
    for d in rdatas {
        r.extend_from_slice(&[0xC0, 0x0C]);
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        r.extend_from_slice(&(d.len() as u16).to_be_bytes());
        r.extend_from_slice(&d);
    }
    Some(r)
}
