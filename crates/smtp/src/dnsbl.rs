//! DNS block lists, checked at connect time.
//!
//! For client `192.0.2.1` and zone `zen.example.org` the lookup is the A record
//! of `1.2.0.192.zen.example.org` (IPv6: the 32 reversed nibbles). A listing is
//! an answer in `127.0.0.0/8`; answers in `127.255.255.0/24` are the zone's
//! error codes (Spamhaus: query through an open resolver, rate limited...) and
//! answers outside `127.0.0.0/8` are nonsense: both count as "no answer", as do
//! timeouts and resolver failures, so a broken DNSBL never blocks mail.
//! Zones are asked in order; the first listing wins and its TXT record, when
//! there is one, becomes part of the rejection text.

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Why a client is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub zone: String,
    pub answer: Ipv4Addr,
    pub text: Option<String>,
}

/// The configured zones and the resolver that asks them.
pub struct Dnsbl {
    zones: Vec<String>,
    resolver: TokioResolver,
}

/// The name to look up for `ip` in `zone`.
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64 + zone.len() + 1);
            for b in v6.octets().iter().rev() {
                s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
                s.push('.');
                s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str(zone);
            s.push('.');
            s
        }
    }
}

/// Whether an A answer means "listed" (see the module doc).
pub fn is_listing(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 127 && !(o[1] == 255 && o[2] == 255)
}

impl Dnsbl {
    /// `resolver`: a name server to ask (`IP:PORT`), or the system's configuration.
    pub fn new(
        zones: Vec<String>,
        resolver: Option<SocketAddr>,
        timeout: Duration,
    ) -> std::io::Result<Dnsbl> {
        let (rc, mut opts) = match resolver {
            Some(addr) => {
                let mut conn = ConnectionConfig::udp();
                conn.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![conn]);
                (
                    ResolverConfig::from_parts(None, Vec::new(), vec![ns]),
                    ResolverOpts::default(),
                )
            }
            None => {
                hickory_resolver::system_conf::read_system_conf().map_err(std::io::Error::other)?
            }
        };
        opts.timeout = timeout;
        opts.attempts = 1;
        let resolver = TokioResolver::builder_with_config(rc, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Dnsbl { zones, resolver })
    }

    /// The first zone listing `ip`, if any. Loopback clients are never looked up.
    pub async fn check(&self, ip: IpAddr) -> Option<Listing> {
        for zone in &self.zones {
            let name = query_name(ip, zone);
            let answers = match self.resolver.ipv4_lookup(name.as_str()).await {
                Ok(l) => l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(a.0),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                Err(e) => {
                    if !e.is_no_records_found() {
                        tracing::warn!(zone, "DNSBL lookup failed, counted as not listed: {e}");
                    }
                    continue;
                }
            };
            let Some(answer) = answers.iter().copied().find(|a| is_listing(*a)) else {
                if let Some(a) = answers.first() {
                    tracing::warn!(zone, %a, "DNSBL answered an error code; counted as not listed");
                }
                continue;
            };
            let text = match self.resolver.txt_lookup(name.as_str()).await {
                Ok(t) => t.answers().iter().find_map(|r| match &r.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|d| String::from_utf8_lossy(d).into_owned())
                            .collect::<Vec<_>>()
                            .join(""),
                    ),
                    _ => None,
                }),
                Err(_) => None,
            };
            return Some(Listing {
                zone: zone.clone(),
                answer,
                text,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        assert_eq!(
            query_name("192.0.2.1".parse().unwrap(), "bl.test"),
            "1.2.0.192.bl.test."
        );
        let v6 = query_name("2001:db8::1".parse().unwrap(), "bl.test.");
        assert!(
            v6.starts_with(
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test."
            ),
            "{v6}"
        );
        assert!(is_listing(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(!is_listing(Ipv4Addr::new(127, 255, 255, 254)));
        assert!(!is_listing(Ipv4Addr::new(10, 0, 0, 1)));
    }

    /// A one-table UDP responder: `1.2.0.192.listed.test` A 127.0.0.2 with a
    /// TXT, `1.2.0.192.broken.test` A 127.255.255.254, NXDOMAIN otherwise.
    fn responder() -> (
        std::net::SocketAddr,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let q = &buf[..n];
                let (mut pos, mut labels) = (12, Vec::new());
                while pos < q.len() && q[pos] != 0 {
                    let l = q[pos] as usize;
                    labels.push(
                        String::from_utf8_lossy(&q[pos + 1..(pos + 1 + l).min(q.len())])
                            .to_lowercase(),
                    );
                    pos += 1 + l;
                }
                let qtype = u16::from_be_bytes([q[pos + 1], q[pos + 2]]);
                let name = labels.join(".");
                let rdata: Option<Vec<u8>> = match (name.as_str(), qtype) {
                    ("1.2.0.192.listed.test", 1) => Some(vec![127, 0, 0, 2]),
                    ("1.2.0.192.listed.test", 16) => {
                        let t = b"listed for a test";
                        let mut d = vec![t.len() as u8];
                        d.extend_from_slice(t);
                        Some(d)
                    }
                    ("1.2.0.192.broken.test", 1) => Some(vec![127, 255, 255, 254]),
                    _ => None,
                };
                let mut r = q[..2].to_vec();
                r.extend_from_slice(&[0x84, if rdata.is_some() { 0x80 } else { 0x83 }, 0, 1]);
                r.extend_from_slice(&[0, u8::from(rdata.is_some()), 0, 0, 0, 0]);
                r.extend_from_slice(&q[12..pos + 5]);
                if let Some(d) = rdata {
                    r.extend_from_slice(&[0xC0, 0x0C]);
                    r.extend_from_slice(&qtype.to_be_bytes());
                    r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
                    r.extend_from_slice(&(d.len() as u16).to_be_bytes());
                    r.extend_from_slice(&d);
                }
                let _ = sock.send_to(&r, from);
            }
        });
        (addr, stop)
    }

    #[tokio::test]
    async fn listed_error_code_and_unlisted() {
        let (addr, stop) = responder();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let zones = |z: &[&str]| z.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = Dnsbl::new(
            zones(&["broken.test", "unknown.test", "listed.test"]),
            Some(addr),
            Duration::from_secs(2),
        )
        .unwrap();
        let l = d.check(ip).await.expect("listed");
        assert_eq!(l.zone, "listed.test");
        assert_eq!(l.answer, Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(l.text.as_deref(), Some("listed for a test"));
        let d = Dnsbl::new(
            zones(&["broken.test", "unknown.test"]),
            Some(addr),
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(d.check(ip).await, None);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
