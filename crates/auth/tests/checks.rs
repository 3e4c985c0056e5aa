//! The auth checks against a loopback DNS server: SPF (pass, fail,
//! softfail, none, temperror by timeout, HELO identity, `mx` and `a`
//! mechanisms), DKIM (a message signed here with a key served as TXT; a
//! modified body fails), DMARC (alignment, p=/sp=), ARC none, DNSBL and
//! URIBL (listed, not listed, error codes, timeouts), skipped clients,
//! the blocking variant, the header, the caches, hostile input, and the
//! results through the policy's built-in rules.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use mail_auth::arc::ArcSealer;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mxguard_auth::{
    AuthConfig, AuthInput, AuthResult, AuthResults, Authenticator, DmarcPolicy, ListConfig,
    SpfIdentity,
};
use support::dns::{self, Rec, Zone};

/// A 2048-bit RSA key made for these tests only (its public half is
/// served by the test DNS as two TXT strings, as real DKIM keys are).
const TEST_RSA_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAwQXxNahf224mfwBCUXcCiFQvRrsQHEhjg8V40dP2B893zBTy
FsHl+aEXSw7L5fpnehZ/NV9ydtnY/NMRLrVqf61zIX6k0NzspXUmm0j3w0ij97GH
aFPQeHu6bRQKy9JW1Yvdj+3121nNX0lM9DJIEcmhZZFAfh6zBKwP7mCS+pgEP6Vt
uKqY3wJDaJV00MPS0Ru4r20YQPAVa81/al6XUUHXxO+WTg2CO/PhR6bVn1AuV/e6
C6okHcSIGcIv21/Zt0xCu10SE/5Z1GQvAh+5BGyz+YzhUxpm6NLp5yVLk4IE3owT
7gekZ18epNNegY+mc3M9WzX06py2Yn+b8xyMJQIDAQABAoIBAAEmFnuOHYPvCIPM
L3EJH6q8IlRuDvsy3cKfRlZRiW1+6rGQKKk5TSKaOZfXsvfaAcGEs/VKhE+dklgO
Jq86b9iJcMy6xDny43Q/Cfq3PKL37BAfdXkpICPKoUFpNDyUFgeuntc4inMG9LrX
HbruggiK2IfcLI75/8wWnDNwxWPKL2Z78IJ+wlMEAN29zHgeu8XZRYHuujMpEdct
BCg5ZDhBEdbHYWtfYxNppoPPimb/DtDb+T8AsjpYMpFIj/Ylc2awtn1HrwuCh+7U
OLIxxhCz1RnGQqjQFauyBLJH9R8pB4zDRDLi3tsqVyiTNYTFAaVfTXmD1DPt5Yq0
Ux3dG8ECgYEA4ZlTtg9rqdpRd8dQUFejdDlYKjistb17UotvJ+HNKkYVJiZRsOJl
NJVnTDsjYgVvY6aNbblxnBCUDFSmAkHNPLMX9rMeIFygYVlxMt5bcr9VpUd5AwG6
6c52gFsb5rWHLp4Jwiy8rCfvqRGr0FmIHRQzNMWqB9qkpdeSDnP3Z0cCgYEA2wjS
2DFPX4BrvS7dXJAcag3NXzR/P2/O0wz9wj3d+DcTZnWPpcWsWvtO/hhoYyz9LmTK
lDoxbETjZmDtJ64OkGFqp6lMjsYzkoqKog0GuroLFLNBYZwdgjTRiX8Qb9SxH7GX
n9xj9oDPA2nP5Rkv5fkdQr0QG4s1DqGfZ+OTvzMCgYB4vhtzoaU570MTHHX7yiwN
lHN/hX3Kd3N9pmsDqXKpYYEIPhIS3djU3/G9dxlk6QvJBedEBrCrmqPiRZvkMVur
VR9KRmulXm3oLHrNgvzm2Uj5gNtfpJlpcbsyz5CLVjTX2nXWmyMP8P/wOSkABis3
hQwy/mgWdAsTR+FAIwkTGQKBgBnOA1EXFhvRPGAwakHidIaGE8D4pVkq6fnxWOAO
e90nV/DFPuQv0qtxWhATfhDZFwblNvyZkoMH5qaEGsyG9A5Me80+49caQK8uBUEs
ObO8AVwx9izywIM7h8gkISKbszZhrNRXmatL55emWqjJ+9ujKrBXJ9Om5dxQbEBI
DnsDAoGBALexBcUVWDjS/hDAhwJ78YnpOXw4T31KBzGrmxA9gqfvqMyZEgR3tatz
n+IYmnb27CjX8Xw8sQY63EcaEWt7UbTKUYAZVc64sLg4fUfkW1jSJ0DEISWD1jtF
3qtu+UTJjeqNBdz78GEgRTn62a2cBuHj+H/DqL85Eh0ykQ2bXX1A
-----END RSA PRIVATE KEY-----";

// The PEM shortcut is deprecated upstream for the DER constructors; a
// test key in PEM reads best.
#[allow(deprecated)]
fn rsa_key() -> RsaKey<Sha256> {
    RsaKey::<Sha256>::from_rsa_pem(TEST_RSA_KEY).unwrap()
}

const GOOD_IP: &str = "192.0.2.10";
const BAD_IP: &str = "192.0.2.11";

struct Fixture {
    dns: dns::Dns,
    key_der: Vec<u8>,
}

fn list(zone: &str, name: Option<&str>, score: f64, codes: &[&str]) -> ListConfig {
    ListConfig {
        zone: zone.into(),
        name: name.map(str::to_string),
        score,
        codes: codes.iter().map(|c| c.to_string()).collect(),
    }
}

fn fixture() -> Fixture {
    let key_der = Ed25519Key::generate_pkcs8().unwrap();
    let key = Ed25519Key::from_pkcs8_der(&key_der).unwrap();
    let p = base64::engine::general_purpose::STANDARD.encode(key.public_key());
    let rsa = rsa_key();
    let rsa_p = base64::engine::general_purpose::STANDARD.encode(rsa.public_key());
    let mut z = Zone::default();
    z.txt(
        "rsa._domainkey.sender.test",
        &format!("v=DKIM1; k=rsa; p={rsa_p}"),
    )
    .txt(
        "arc._domainkey.forwarder.test",
        &format!("v=DKIM1; k=rsa; p={rsa_p}"),
    );
    z.txt("sender.test", &format!("v=spf1 ip4:{GOOD_IP} -all"))
        .txt("soft.test", "v=spf1 ip4:192.0.2.99 ~all")
        .txt("neutral.test", "v=spf1 ?all")
        .a("nospf.test", "192.0.2.1")
        .txt("helo.sender.test", "v=spf1 a -all")
        .a("helo.sender.test", GOOD_IP)
        .txt("mx.test", "v=spf1 mx -all")
        .add("mx.test", Rec::Mx(10, "mail.mx.test".into()))
        .a("mail.mx.test", GOOD_IP)
        .txt("include.test", "v=spf1 include:sender.test -all")
        .txt("slowinclude.test", "v=spf1 include:slow.test -all")
        .txt(
            "s1._domainkey.sender.test",
            &format!("v=DKIM1; k=ed25519; p={p}"),
        )
        .txt("_dmarc.sender.test", "v=DMARC1; p=reject")
        .txt("_dmarc.quar.test", "v=DMARC1; p=none; sp=quarantine")
        .txt("quar.test", &format!("v=spf1 ip4:{GOOD_IP} -all"))
        .txt("sub.quar.test", &format!("v=spf1 ip4:{GOOD_IP} -all"))
        .a("sub.quar.test", "192.0.2.1")
        // DNSBL: .10 listed on bl.test and pbl.test, .11 an error code.
        .a("10.2.0.192.bl.test", "127.0.0.2")
        .a("11.2.0.192.bl.test", "127.255.255.254")
        .a("10.2.0.192.pbl.test", "127.0.0.11")
        // URIBL.
        .a("bad.example.dbl.test", "127.0.1.2")
        .a("err.example.dbl.test", "127.255.255.254");
    z.drop.insert("slow.test".into());
    z.drop.insert("slowbl.test".into());
    Fixture {
        dns: dns::start(z),
        key_der,
    }
}

fn config(f: &Fixture) -> AuthConfig {
    AuthConfig {
        nameservers: vec![f.dns.addr()],
        dns_timeout_ms: 300,
        dns_attempts: 1,
        time_budget_ms: 3000,
        dnsbl: vec![
            list("bl.test", None, 3.0, &[]),
            list("pbl.test", Some("RCVD_IN_PBL"), 0.5, &["127.0.0.10/31"]),
        ],
        uribl: vec![list("dbl.test", None, 2.5, &["127.0.1.0/24"])],
        ..AuthConfig::default()
    }
}

fn message(from: &str, body: &str) -> String {
    format!(
        "From: Sender <{from}>\r\nTo: user@example.com\r\nSubject: Hello\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <t1@sender.test>\r\n\r\n{body}\r\n"
    )
}

fn signed(f: &Fixture, domain: &str, msg: &str) -> String {
    let key = Ed25519Key::from_pkcs8_der(&f.key_der).unwrap();
    let sig = DkimSigner::from_key(key)
        .domain(domain)
        .selector("s1")
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(msg.as_bytes())
        .unwrap();
    format!("{}{msg}", sig.to_header())
}

fn input<'a>(ip: &str, helo: &'a str, mail_from: &'a str, msg: &'a [u8]) -> AuthInput<'a> {
    AuthInput {
        client_ip: Some(ip.parse::<IpAddr>().unwrap()),
        helo,
        mail_from,
        message: msg,
        url_domains: &[],
    }
}

async fn spf_of(a: &Authenticator, ip: &str, helo: &str, from: &str) -> (AuthResult, AuthResults) {
    let msg = message("x@nowhere.test", "hi");
    let r = a.check(&input(ip, helo, from, msg.as_bytes())).await;
    (r.spf.as_ref().expect("spf ran").result, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_results() {
    let f = fixture();
    let a = Authenticator::new(&config(&f), "mx.example.com").unwrap();
    let h = "mail.sender.test";
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@sender.test").await.0,
        AuthResult::Pass
    );
    assert_eq!(
        spf_of(&a, BAD_IP, h, "a@sender.test").await.0,
        AuthResult::Fail
    );
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@soft.test").await.0,
        AuthResult::SoftFail
    );
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@neutral.test").await.0,
        AuthResult::Neutral
    );
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@nospf.test").await.0,
        AuthResult::None
    );
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@unknown.test").await.0,
        AuthResult::None
    );
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@mx.test").await.0,
        AuthResult::Pass
    );
    assert_eq!(spf_of(&a, BAD_IP, h, "a@mx.test").await.0, AuthResult::Fail);
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@include.test").await.0,
        AuthResult::Pass
    );
    // Null sender: the HELO identity.
    let (r, full) = spf_of(&a, GOOD_IP, "helo.sender.test", "").await;
    assert_eq!(r, AuthResult::Pass);
    let spf = full.spf.unwrap();
    assert_eq!(spf.identity, SpfIdentity::Helo);
    assert_eq!(spf.domain, "helo.sender.test");
    assert_eq!(
        spf_of(&a, BAD_IP, "helo.sender.test", "").await.0,
        AuthResult::Fail
    );
    // An address literal HELO with <>: nothing to check.
    assert_eq!(
        spf_of(&a, GOOD_IP, "[192.0.2.10]", "").await.0,
        AuthResult::None
    );
    // Timeouts: temperror, never pass, within the budget.
    let t = Instant::now();
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@slow.test").await.0,
        AuthResult::TempError
    );
    assert_eq!(
        spf_of(&a, GOOD_IP, h, "a@slowinclude.test").await.0,
        AuthResult::TempError
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_budget_bounds_a_slow_check() {
    let f = fixture();
    let mut cfg = config(&f);
    cfg.dns_timeout_ms = 5000;
    cfg.time_budget_ms = 400;
    let a = Authenticator::new(&cfg, "mx.example.com").unwrap();
    let t = Instant::now();
    let (r, full) = spf_of(&a, GOOD_IP, "h.test", "a@slow.test").await;
    let took = t.elapsed();
    assert_eq!(r, AuthResult::TempError);
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(full.header.contains("spf=temperror"), "{}", full.header);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_and_dmarc() {
    let f = fixture();
    let a = Authenticator::new(&config(&f), "mx.example.com").unwrap();
    // Signed by the From domain, SPF pass too: all pass, policy reject.
    let msg = signed(
        &f,
        "sender.test",
        &message("alice@sender.test", "Hello there."),
    );
    let r = a
        .check(&input(
            GOOD_IP,
            "mail.sender.test",
            "alice@sender.test",
            msg.as_bytes(),
        ))
        .await;
    let dkim = r.dkim.clone().unwrap();
    assert_eq!(dkim.len(), 1);
    assert_eq!(dkim[0].result, AuthResult::Pass, "{r:#?}");
    assert_eq!(dkim[0].domain, "sender.test");
    assert_eq!(dkim[0].selector, "s1");
    let dmarc = r.dmarc.clone().unwrap();
    assert_eq!(dmarc.result, AuthResult::Pass);
    assert_eq!(dmarc.domain, "sender.test");
    assert_eq!(dmarc.policy, Some(DmarcPolicy::Reject));
    assert_eq!(r.arc, Some(AuthResult::None));
    assert!(r.header.starts_with("mx.example.com;"), "{}", r.header);
    assert!(a.is_own_results(&r.header));
    assert!(!a.is_own_results("mx.other.test; spf=pass"));
    for want in [
        "spf=pass",
        "dkim=pass header.d=sender.test header.s=s1",
        "arc=none",
        "dmarc=pass header.from=sender.test policy.dmarc=reject",
    ] {
        assert!(r.header.contains(want), "{want} not in {}", r.header);
    }

    // DKIM alone aligns: SPF fails (wrong client), DMARC still passes.
    let r = a
        .check(&input(
            BAD_IP,
            "mail.sender.test",
            "alice@sender.test",
            msg.as_bytes(),
        ))
        .await;
    assert_eq!(r.spf.as_ref().unwrap().result, AuthResult::Fail);
    assert_eq!(r.dmarc.as_ref().unwrap().result, AuthResult::Pass);

    // Body modified after signing: DKIM fails; SPF passes for another
    // domain (not aligned): DMARC fails under p=reject.
    let tampered = msg.replace("Hello there.", "Hello there, send money.");
    let r = a
        .check(&input(
            GOOD_IP,
            "mail.mx.test",
            "bounce@mx.test",
            tampered.as_bytes(),
        ))
        .await;
    assert_eq!(
        r.dkim.as_ref().unwrap()[0].result,
        AuthResult::Fail,
        "{r:#?}"
    );
    assert_eq!(r.spf.as_ref().unwrap().result, AuthResult::Pass);
    let d = r.dmarc.as_ref().unwrap();
    assert_eq!(
        (d.result, d.policy),
        (AuthResult::Fail, Some(DmarcPolicy::Reject))
    );
    assert!(r.header.contains("dkim=fail"), "{}", r.header);
    assert!(r.header.contains("dmarc=fail"), "{}", r.header);

    // Unsigned, SPF aligned (relaxed): pass through SPF.
    let plain = message("alice@sender.test", "Hi.");
    let r = a
        .check(&input(
            GOOD_IP,
            "h.test",
            "bounce@sender.test",
            plain.as_bytes(),
        ))
        .await;
    assert_eq!(r.dkim, Some(vec![]));
    assert!(r.header.contains("dkim=none"), "{}", r.header);
    assert_eq!(r.dmarc.as_ref().unwrap().result, AuthResult::Pass);

    // Subdomain From: the organisational record's sp= applies.
    let sub = message("alice@sub.quar.test", "Hi.");
    let r = a
        .check(&input(
            BAD_IP,
            "h.test",
            "bounce@sub.quar.test",
            sub.as_bytes(),
        ))
        .await;
    let d = r.dmarc.as_ref().unwrap();
    assert_eq!(
        (d.result, d.policy),
        (AuthResult::Fail, Some(DmarcPolicy::Quarantine)),
        "{r:#?}"
    );

    // No DMARC record: none, no policy.
    let other = message("alice@nospf.test", "Hi.");
    let r = a
        .check(&input(GOOD_IP, "h.test", "a@nospf.test", other.as_bytes()))
        .await;
    let d = r.dmarc.as_ref().unwrap();
    assert_eq!((d.result, d.policy), (AuthResult::None, None));

    // A signature whose key does not exist: permerror or temperror, never pass.
    let wrong = signed(&f, "nospf.test", &message("alice@nospf.test", "Hi."));
    let r = a
        .check(&input(GOOD_IP, "h.test", "a@nospf.test", wrong.as_bytes()))
        .await;
    let res = r.dkim.as_ref().unwrap()[0].result;
    assert!(
        matches!(
            res,
            AuthResult::PermError | AuthResult::Fail | AuthResult::TempError
        ),
        "{res:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnsbl_and_uribl() {
    let f = fixture();
    let mut cfg = config(&f);
    cfg.dnsbl.push(list("slowbl.test", None, 1.0, &[]));
    let a = Authenticator::new(&cfg, "mx.example.com").unwrap();
    let msg = message("a@x.test", "hi");
    let domains: Vec<String> = ["bad.example", "good.example", "err.example"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut inp = input(GOOD_IP, "h.test", "a@x.test", msg.as_bytes());
    inp.url_domains = &domains;
    let t = Instant::now();
    let r = a.check(&inp).await;
    // The silent zone costs one query timeout, not more.
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let got: Vec<(&str, &str, String, f64)> = r
        .dnsbl
        .iter()
        .map(|l| {
            (
                l.zone.as_str(),
                l.rule.as_str(),
                l.answer.to_string(),
                l.score,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("bl.test", "RCVD_IN_BL", "127.0.0.2".to_string(), 3.0),
            ("pbl.test", "RCVD_IN_PBL", "127.0.0.11".to_string(), 0.5),
        ]
    );
    assert!(
        r.errors.iter().any(|e| e.starts_with("dnsbl slowbl.test:")),
        "{:?}",
        r.errors
    );
    assert_eq!(r.uribl.len(), 1, "{r:#?}");
    assert_eq!(r.uribl[0].domain, "bad.example");
    assert_eq!(r.uribl[0].rule, "URIBL_DBL");
    assert!(
        r.errors
            .iter()
            .any(|e| e == "uribl dbl.test: error code 127.255.255.254"),
        "{:?}",
        r.errors
    );

    // An error code is never a listing.
    let r = a
        .check(&input(BAD_IP, "h.test", "a@x.test", msg.as_bytes()))
        .await;
    assert!(r.dnsbl.is_empty(), "{r:#?}");
    assert!(
        r.errors
            .iter()
            .any(|e| e == "dnsbl bl.test: error code 127.255.255.254"),
        "{:?}",
        r.errors
    );
    // Not listed anywhere.
    let r = a
        .check(&input("192.0.2.12", "h.test", "a@x.test", msg.as_bytes()))
        .await;
    assert!(r.dnsbl.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_trusted_clients_skip_spf_dmarc_dnsbl() {
    let f = fixture();
    let mut cfg = config(&f);
    cfg.trusted_networks = vec!["192.0.2.0/28".into()];
    let a = Authenticator::new(&cfg, "mx.example.com").unwrap();
    let msg = signed(&f, "sender.test", &message("alice@sender.test", "Hi."));
    for (ip, why) in [
        (GOOD_IP, "trusted client"),
        ("127.0.0.1", "private client address"),
        ("10.1.2.3", "private client address"),
        ("::1", "private client address"),
    ] {
        let r = a
            .check(&input(ip, "h.test", "alice@sender.test", msg.as_bytes()))
            .await;
        assert_eq!(r.skipped.as_deref(), Some(why), "{ip}");
        assert!(
            r.spf.is_none() && r.dmarc.is_none() && r.dnsbl.is_empty(),
            "{ip}: {r:#?}"
        );
        // DKIM still runs.
        assert_eq!(r.dkim.as_ref().unwrap()[0].result, AuthResult::Pass);
    }
    let mut none = input(GOOD_IP, "h.test", "alice@sender.test", msg.as_bytes());
    none.client_ip = None;
    assert_eq!(
        a.check(&none).await.skipped.as_deref(),
        Some("no client address")
    );
}

#[test]
fn blocking_variant() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let f = fixture();
    let a =
        rt.block_on(async { Arc::new(Authenticator::new(&config(&f), "mx.example.com").unwrap()) });
    let msg = message("a@sender.test", "hi");
    // From a spawn_blocking thread, as the gateway's evaluation runs.
    let a2 = a.clone();
    let m2 = msg.clone();
    let r = rt
        .block_on(rt.spawn_blocking(move || {
            a2.check_blocking(&input(GOOD_IP, "h.test", "a@sender.test", m2.as_bytes()))
        }))
        .unwrap();
    assert_eq!(r.spf.unwrap().result, AuthResult::Pass);
    // From a plain thread.
    let a3 = a.clone();
    let m3 = msg.clone();
    let r = std::thread::spawn(move || {
        a3.check_blocking(&input(BAD_IP, "h.test", "a@sender.test", m3.as_bytes()))
    })
    .join()
    .unwrap();
    assert_eq!(r.spf.unwrap().result, AuthResult::Fail);
    // Misused from an async task: temperror, no panic.
    let a4 = a.clone();
    let r = rt.block_on(async move {
        a4.check_blocking(&input(GOOD_IP, "h.test", "a@sender.test", msg.as_bytes()))
    });
    assert_eq!(r.spf.unwrap().result, AuthResult::TempError);
    assert!(!r.errors.is_empty());
    // Built in a current-thread runtime: temperror at once, no hang.
    let ct = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = ct.block_on(async { Authenticator::new(&config(&f), "mx.example.com").unwrap() });
    let msg = message("a@sender.test", "hi");
    let r = std::thread::scope(|s| {
        s.spawn(|| a.check_blocking(&input(GOOD_IP, "h.test", "a@sender.test", msg.as_bytes())))
            .join()
            .unwrap()
    });
    assert_eq!(r.spf.unwrap().result, AuthResult::TempError);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_answer_the_second_time() {
    let f = fixture();
    let a = Authenticator::new(&config(&f), "mx.example.com").unwrap();
    let msg = signed(
        &f,
        "sender.test",
        &message("alice@sender.test", "Hello there."),
    );
    let domains = vec!["bad.example".to_string(), "good.example".to_string()];
    let mut inp = input(GOOD_IP, "h.test", "alice@sender.test", msg.as_bytes());
    inp.url_domains = &domains;
    let q0 = f.dns.count();
    let t = Instant::now();
    let first = a.check(&inp).await;
    let cold = t.elapsed();
    let q1 = f.dns.count();
    let t = Instant::now();
    let second = a.check(&inp).await;
    let warm = t.elapsed();
    let q2 = f.dns.count();
    assert_eq!(first, second);
    assert!(q1 - q0 >= 6, "cold check asked {} queries", q1 - q0);
    assert_eq!(
        q2 - q1,
        0,
        "the warm check asked the server {} times",
        q2 - q1
    );
    // Warm: many checks, to time one.
    let n = 200u32;
    let t = Instant::now();
    for _ in 0..n {
        a.check(&inp).await;
    }
    let per = t.elapsed() / n;
    let s = a.stats();
    eprintln!(
        "FIGURES: cold check {cold:?} ({} queries over loopback), warm check {warm:?}, warm average over {n}: {per:?}; parsed-record cache hits {} misses {}",
        q1 - q0,
        s.cache_hits,
        s.cache_misses
    );
    assert!(s.cache_hits > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_panics() {
    let f = fixture();
    let a = Authenticator::new(&config(&f), "mx.example.com").unwrap();
    let long = "a".repeat(100_000);
    let many_sigs: String = (0..500)
        .map(|i| {
            format!(
                "DKIM-Signature: v=1; a=rsa-sha256; d=x{i}.test; s=s; h=from; bh=AAAA; b=AAAA\r\n"
            )
        })
        .collect();
    let arc = "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x.test; s=s; b=AAAA\r\nARC-Message-Signature: i=1; a=rsa-sha256; d=x.test; s=s; h=from; bh=AAAA; b=AAAA\r\nARC-Authentication-Results: i=1; x.test; spf=pass\r\n";
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"From:\r\n\r\n".to_vec(),
        format!("From: a@{long}\r\n\r\nx").into_bytes(),
        format!("{many_sigs}From: a@sender.test\r\n\r\nbody").into_bytes(),
        format!("{arc}From: a@sender.test\r\n\r\nbody").into_bytes(),
        b"DKIM-Signature: v=1; a=ed25519-sha256; d=sender.test; s=s1; l=99999999999999999999; h=from; bh=; b=\r\nFrom: a@sender.test\r\n\r\n".to_vec(),
        vec![0xff; 4096],
    ];
    // Random bytes narrowed to the mail alphabet, deterministic.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let alphabet = b"DKIM-Signature: v=1; a=d@.;=\r\n \tFrom:ARC-Seal bh b h s i cv\x00\xc3\xa9";
    for _ in 0..200 {
        let mut m = Vec::new();
        for _ in 0..(x % 600) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            m.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        cases.push(m);
    }
    // Hundreds of signatures: only the first MAX_DKIM_SIGNATURES are looked up.
    let q0 = f.dns.count();
    let r = a
        .check(&input(
            GOOD_IP,
            "h.test",
            "a@sender.test",
            cases[4].as_slice(),
        ))
        .await;
    assert_eq!(
        r.dkim.as_ref().unwrap().len(),
        mxguard_auth::MAX_DKIM_SIGNATURES
    );
    assert!(f.dns.count() - q0 < 40, "{} queries", f.dns.count() - q0);
    let helos = ["", "[1.2.3.4]", &long, "..", "a..b", "\u{e9}.test"];
    for (i, m) in cases.iter().enumerate() {
        let helo = helos[i % helos.len()];
        let from = if i % 3 == 0 {
            ""
        } else {
            "x@\u{e9}\u{e9}.test"
        };
        let r = a.check(&input(GOOD_IP, helo, from, m)).await;
        assert!(!r.header.is_empty());
        assert_ne!(r.dmarc.as_ref().map(|d| d.result), Some(AuthResult::Pass));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_dkim_with_a_long_key_record() {
    let f = fixture();
    let a = Authenticator::new(&config(&f), "mx.example.com").unwrap();
    let msg = message("alice@sender.test", "Signed with RSA.");
    let key = rsa_key();
    let sig = DkimSigner::from_key(key)
        .domain("sender.test")
        .selector("rsa")
        .headers(["From", "To", "Subject"])
        .sign(msg.as_bytes())
        .unwrap();
    let signed = format!("{}{msg}", sig.to_header());
    let r = a
        .check(&input(
            BAD_IP,
            "h.test",
            "alice@sender.test",
            signed.as_bytes(),
        ))
        .await;
    let d = &r.dkim.as_ref().unwrap()[0];
    assert_eq!(
        (d.result, d.selector.as_str()),
        (AuthResult::Pass, "rsa"),
        "{r:#?}"
    );
    assert_eq!(r.dmarc.as_ref().unwrap().result, AuthResult::Pass);
}

/// A mailing list changes the message (DKIM breaks, DMARC fails) and seals
/// it with ARC: the chain verifies. Without a list of trusted sealers the
/// policy does not let ARC override DMARC (ARC_PASS is worth 0 points).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_sealed_by_a_forwarder() {
    let f = fixture();
    let a = Authenticator::new(&config(&f), "mx.example.com").unwrap();
    let original = signed(
        &f,
        "sender.test",
        &message("alice@sender.test", "To the list."),
    );
    let listed = original.replace("Subject: Hello", "Subject: [list] Hello");
    let parsed = mail_auth::AuthenticatedMessage::parse(listed.as_bytes()).unwrap();
    let arc_none = mail_auth::ArcOutput::default();
    let ar = mail_auth::AuthenticationResults::new("forwarder.test")
        .with_arc_result(&arc_none, GOOD_IP.parse().unwrap());
    let set = ArcSealer::from_key(rsa_key())
        .domain("forwarder.test")
        .selector("arc")
        .headers(["From", "To", "Subject", "DKIM-Signature"])
        .seal(&parsed, &ar, &arc_none)
        .unwrap();
    let sealed = format!("{}{listed}", set.to_header());
    let r = a
        .check(&input(
            GOOD_IP,
            "mail.mx.test",
            "list-bounce@mx.test",
            sealed.as_bytes(),
        ))
        .await;
    assert_eq!(r.arc, Some(AuthResult::Pass), "{r:#?}");
    assert_eq!(r.dkim.as_ref().unwrap()[0].result, AuthResult::Fail);
    assert_eq!(r.dmarc.as_ref().unwrap().result, AuthResult::Fail);
    assert!(r.header.contains("arc=pass"), "{}", r.header);
    // A broken seal (the message changed after sealing) does not pass.
    let broken = sealed.replace("To the list.", "To the list, changed.");
    let r = a
        .check(&input(
            GOOD_IP,
            "mail.mx.test",
            "list-bounce@mx.test",
            broken.as_bytes(),
        ))
        .await;
    assert_ne!(r.arc, Some(AuthResult::Pass), "{r:#?}");
}

#[test]
fn authenticator_is_shareable() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Authenticator>();
}

/// The results as facts, through the policy's built-in rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_drive_the_builtin_rules() {
    use mxguard_policy::rules::{Action, CompiledPolicy, Envelope};
    use mxguard_policy::MessageFacts;
    let f = fixture();
    let a = Authenticator::new(&config(&f), "mx.example.com").unwrap();
    let msg = message(
        "ceo@sender.test",
        "Please wire the money: https://bad.example/pay",
    );
    let mut facts = MessageFacts::headers_of(msg.as_bytes());
    facts
        .links
        .push(mxguard_decode_link("https://bad.example/pay"));
    let domains = facts.url_domains(20);
    assert_eq!(domains, ["bad.example"]);
    let mut inp = input(GOOD_IP, "h.test", "bounce@mx.test", msg.as_bytes());
    inp.url_domains = &domains;
    facts.auth = Some(a.check(&inp).await);
    let policy = CompiledPolicy::from_toml("", "").unwrap();
    let rcpts = vec!["user@example.com".to_string()];
    let local = vec!["example.com".to_string()];
    let env = Envelope {
        client_ip: Some(GOOD_IP.parse().unwrap()),
        helo: "h.test",
        mail_from: "bounce@mx.test",
        rcpts: &rcpts,
        local_domains: &local,
    };
    let v = &policy.evaluate(&facts, &env, None)[0];
    let mut names = v.rule_names();
    names.sort();
    assert_eq!(
        names,
        [
            "DMARC_FAIL_REJECT",
            "RCVD_IN_BL",
            "RCVD_IN_PBL",
            "URIBL_DBL"
        ],
        "{v:#?}"
    );
    assert_eq!(v.score, 4.0 + 3.0 + 0.5 + 2.5);
    assert_eq!(v.strongest(), Some(&Action::Quarantine));
}

fn mxguard_decode_link(href: &str) -> mxguard_decode::Link {
    mxguard_decode::Link {
        href: href.to_string(),
        text: None,
    }
}
