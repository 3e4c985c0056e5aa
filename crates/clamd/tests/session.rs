//! The session over in-memory streams (and a real Unix socket pair for
//! FILDES): every command, both prefixes, IDSESSION, timeouts, limits,
//! reload during a scan. Expected bytes are clamd 1.4.6's (recorded from a
//! real clamd; see `crates/server/tests/clamd.rs` for the live comparison).

use mxguard_clamd::pool::{Pool, PoolConfig};
use mxguard_clamd::proto::encode_instream;
use mxguard_clamd::session::{serve, SessionConfig, Shared};
use mxguard_clamd::{FixedService, ScanService};
use mxguard_engine::{
    load_signatures, Engine, EngineError, ScanObject, Scanner, SignatureConfig, SignatureEngine,
};
use mxguard_types::{EngineKind, Finding, ScanOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn scanner() -> Arc<Scanner> {
    let (set, _) = load_signatures(&SignatureConfig {
        paths: vec![],
        builtin: true,
        cache_dir: None,
    });
    Arc::new(Scanner::new(vec![Box::new(SignatureEngine::new(
        Arc::new(set),
    ))]))
}

fn cfg() -> SessionConfig {
    SessionConfig {
        read_timeout: Duration::from_secs(5),
        command_read_timeout: Duration::from_secs(5),
        stream_max_length: 1 << 20,
        allow_shutdown: false,
        allow_all_match_scan: true,
        temp_dir: std::env::temp_dir(),
    }
}

fn shared_with(service: Arc<dyn ScanService>, cfg: SessionConfig) -> Arc<Shared> {
    Arc::new(Shared::new(
        service,
        Pool::new(PoolConfig {
            max_threads: 4,
            max_queue: 16,
            idle_timeout: Duration::from_secs(5),
        }),
        cfg,
    ))
}

fn shared() -> Arc<Shared> {
    shared_with(
        Arc::new(FixedService {
            scanner: scanner(),
            version: "mxguard 0.1.0/3/Thu Jan  1 00:00:00 1970".into(),
        }),
        cfg(),
    )
}

/// Sends `parts` (with a pause between them, so they arrive as separate
/// reads) and returns everything the server wrote until it closed.
async fn talk(sh: &Arc<Shared>, parts: &[&[u8]]) -> Vec<u8> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let task = tokio::spawn(serve(server, None, "test".into(), sh.clone()));
    let (mut rd, mut wr) = tokio::io::split(client);
    let mut out = Vec::new();
    // Write and read at once: big inputs would otherwise fill the pipe. The
    // write side stays open until the server closes.
    tokio::join!(
        async {
            for p in parts {
                if wr.write_all(p).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
        async {
            let _ = tokio::time::timeout(Duration::from_secs(20), rd.read_to_end(&mut out)).await;
        }
    );
    let _ = task.await;
    out
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_in_every_form_and_unknown_commands() {
    let sh = shared();
    for (req, want) in [
        (&b"PING"[..], &b"PONG\n"[..]),
        (b"PING\r\n", b"PONG\n"),
        (b"nPING\n", b"PONG\n"),
        (b"zPING\0", b"PONG\0"),
        (b"nPING\nnPING\n", b"PONG\n"),
        (b"nFOO\n", b"UNKNOWN COMMAND\n"),
        (b"zFOO\0", b"UNKNOWN COMMAND\0"),
        (b"FOO", b"UNKNOWN COMMAND\n"),
        (b"nEND\n", b"UNKNOWN COMMAND\n"),
        (b"nSCAN\n", b"UNKNOWN COMMAND\n"),
        (b"INSTREAM\n", b"UNKNOWN COMMAND\n"),
        (b"STATS", b"UNKNOWN COMMAND\n"),
        (b"nSHUTDOWN\n", b"COMMAND UNAVAILABLE\n"),
        (b"nDETSTATS\n", b""),
        (
            b"nVERSION\n",
            b"mxguard 0.1.0/3/Thu Jan  1 00:00:00 1970\n",
        ),
        (
            b"zVERSIONCOMMANDS\0",
            b"mxguard 0.1.0/3/Thu Jan  1 00:00:00 1970| COMMANDS: SCAN QUIT RELOAD PING CONTSCAN VERSIONCOMMANDS VERSION END SHUTDOWN MULTISCAN FILDES STATS IDSESSION INSTREAM DETSTATSCLEAR DETSTATS ALLMATCHSCAN\0",
        ),
    ] {
        assert_eq!(s(&talk(&sh, &[req]).await), s(want), "{}", s(req));
    }
    // A command longer than clamd's buffer: closed without a word.
    let mut long = b"n".to_vec();
    long.extend(std::iter::repeat_n(b'A', 5000));
    assert_eq!(talk(&sh, &[&long]).await, b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instream_in_pieces_limits_and_terminators() {
    let sh = shared();
    let wire = encode_instream(EICAR, 7);
    // Command, then the chunks split in awkward places (inside a header too).
    let out = talk(
        &sh,
        &[b"zINS", b"TREAM\0", &wire[..2], &wire[2..30], &wire[30..]],
    )
    .await;
    assert_eq!(s(&out), "stream: Win.Test.EICAR_HDB-1 FOUND\0");
    let mut req = b"nINSTREAM\n".to_vec();
    req.extend(encode_instream(b"hello world", 4));
    assert_eq!(s(&talk(&sh, &[&req]).await), "stream: OK\n");
    assert_eq!(
        s(&talk(&sh, &[b"zINSTREAM\0\0\0\0\0"]).await),
        "stream: OK\0",
        "empty stream"
    );
    // Exactly the limit passes, one byte more is refused and the connection closed.
    let mut ok = b"zINSTREAM\0".to_vec();
    ok.extend(encode_instream(&vec![b'a'; 1 << 20], 65536));
    assert_eq!(s(&talk(&sh, &[&ok]).await), "stream: OK\0");
    let mut over = b"zINSTREAM\0".to_vec();
    over.extend(encode_instream(&vec![b'a'; (1 << 20) + 1], 65536));
    assert_eq!(
        s(&talk(&sh, &[&over]).await),
        "INSTREAM size limit exceeded. ERROR\0"
    );
    let mut huge = b"zINSTREAM\0".to_vec();
    huge.extend(0xffff_ffffu32.to_be_bytes());
    huge.extend(b"xxxx");
    assert_eq!(
        s(&talk(&sh, &[&huge]).await),
        "INSTREAM size limit exceeded. ERROR\0"
    );
    // Bytes after a single command's stream are ignored, as clamd does.
    let mut after = b"zINSTREAM\0".to_vec();
    after.extend(encode_instream(EICAR, 68));
    after.extend(b"zPING\0");
    assert_eq!(
        s(&talk(&sh, &[&after]).await),
        "stream: Win.Test.EICAR_HDB-1 FOUND\0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_streams_are_spooled_to_an_unlinked_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sh = shared_with(
        Arc::new(FixedService {
            scanner: scanner(),
            version: "v".into(),
        }),
        SessionConfig {
            stream_max_length: 64 << 20,
            temp_dir: tmp.path().to_path_buf(),
            ..cfg()
        },
    );
    // 6 MiB of preamble before the infected attachment: past the memory limit.
    let pad = "padding line\r\n".repeat(6 << 16);
    let msg = two_attachments().replacen("\r\n\r\n--b1", &format!("\r\n\r\n{pad}--b1"), 1);
    assert!(msg.len() > mxguard_clamd::session::STREAM_MEMORY_LIMIT);
    let mut req = b"zIDSESSION\0zINSTREAM\0".to_vec();
    req.extend(encode_instream(msg.as_bytes(), 1 << 16));
    req.extend(b"zINSTREAM\0");
    req.extend(encode_instream(&vec![b'x'; 5 << 20], 1 << 20));
    req.extend(b"zEND\0");
    let out = s(&talk(&sh, &[&req]).await);
    let mut l: Vec<&str> = out.split('\0').filter(|x| !x.is_empty()).collect();
    l.sort();
    assert_eq!(
        l,
        vec!["1: stream: Win.Test.EICAR_HDB-1 FOUND", "2: stream: OK"]
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temporary files are unlinked at once"
    );
    // An unusable temporary directory: the connection is closed, as clamd does.
    let sh = shared_with(
        Arc::new(FixedService {
            scanner: scanner(),
            version: "v".into(),
        }),
        SessionConfig {
            stream_max_length: 64 << 20,
            temp_dir: tmp.path().join("missing"),
            ..cfg()
        },
    );
    let mut req = b"zINSTREAM\0".to_vec();
    req.extend(encode_instream(&vec![b'x'; 5 << 20], 1 << 20));
    assert_eq!(talk(&sh, &[&req]).await, b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idsession_numbers_replies_and_runs_many_commands() {
    let sh = shared();
    let mut req = b"zIDSESSION\0".to_vec();
    let n = 40;
    for i in 0..n {
        req.extend(b"zINSTREAM\0");
        if i % 3 == 0 {
            req.extend(encode_instream(EICAR, 10));
        } else {
            req.extend(encode_instream(format!("clean {i}").as_bytes(), 3));
        }
    }
    req.extend(b"zPING\0zVERSION\0zEND\0");
    let out = s(&talk(&sh, &[&req]).await);
    let mut replies: Vec<&str> = out.split('\0').filter(|l| !l.is_empty()).collect();
    replies.sort_by_key(|l| l.split(':').next().unwrap().parse::<u32>().unwrap());
    assert_eq!(replies.len(), n + 2, "{out:?}");
    for (i, r) in replies.iter().take(n).enumerate() {
        let want = if i % 3 == 0 {
            format!("{}: stream: Win.Test.EICAR_HDB-1 FOUND", i + 1)
        } else {
            format!("{}: stream: OK", i + 1)
        };
        assert_eq!(*r, want);
    }
    assert_eq!(replies[n], format!("{}: PONG", n + 1));
    assert!(replies[n + 1].starts_with(&format!("{}: mxguard 0.1.0/", n + 2)));

    // The terminator follows each command's own prefix.
    let out = talk(&sh, &[b"zIDSESSION\0nPING\nzPING\0zEND\0"]).await;
    assert_eq!(s(&out), "1: PONG\n2: PONG\0");
    // Commands clamd refuses inside a session end it.
    let out = talk(&sh, &[b"zIDSESSION\0zPING\0zCONTSCAN /tmp\0zPING\0zEND\0"]).await;
    assert_eq!(
        s(&out),
        "1: PONG\x002: Command invalid inside IDSESSION. ERROR\0"
    );
    let out = talk(&sh, &[b"zIDSESSION\0zPING\0zFOO\0zEND\0"]).await;
    assert_eq!(
        s(&out),
        "1: PONG\x002: Command invalid inside IDSESSION. ERROR\0"
    );
    let out = talk(&sh, &[b"zIDSESSION\0zPING\0", b"PING"]).await;
    assert_eq!(
        s(&out),
        "1: PONG\x002: Only nCMDS\\n and zCMDS\\0 are accepted inside IDSESSION. ERROR\x002: Error processing command. ERROR\0"
    );
    let mut big = b"zIDSESSION\0zPING\0zINSTREAM\0".to_vec();
    big.extend((2u32 << 20).to_be_bytes());
    big.push(b'x');
    assert_eq!(
        s(&talk(&sh, &[&big]).await),
        "1: PONG\x002: INSTREAM size limit exceeded. ERROR\0"
    );
    // No descriptor can come over this stream.
    let out = talk(&sh, &[b"zIDSESSION\0zFILDES\0\0zEND\0"]).await;
    assert_eq!(s(&out), "1: No file descriptor received. ERROR\0");
    assert_eq!(talk(&sh, &[b"zIDSESSION\0zEND\0"]).await, b"");
    let out = s(&talk(&sh, &[b"zIDSESSION\0zSTATS\0zEND\0"]).await);
    assert!(
        out.starts_with("1: POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live "),
        "{out}"
    );
    assert!(out.ends_with("\nEND\0"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_answer_command_read_timed_out() {
    let sh = shared_with(
        Arc::new(FixedService {
            scanner: scanner(),
            version: "v".into(),
        }),
        SessionConfig {
            read_timeout: Duration::from_millis(600),
            command_read_timeout: Duration::from_millis(300),
            ..cfg()
        },
    );
    let t = std::time::Instant::now();
    assert_eq!(talk(&sh, &[b"nPI"]).await, b"COMMAND READ TIMED OUT\n");
    let el = t.elapsed();
    assert!(
        el >= Duration::from_millis(280) && el < Duration::from_secs(3),
        "{el:?}"
    );
    // Inside a session the next command may take ReadTimeout.
    let t = std::time::Instant::now();
    assert_eq!(
        talk(&sh, &[b"zIDSESSION\0zPING\0"]).await,
        b"1: PONG\0COMMAND READ TIMED OUT\n"
    );
    assert!(t.elapsed() >= Duration::from_millis(580));
    // A stalled stream too.
    assert_eq!(
        talk(&sh, &[b"zINSTREAM\0\0\0\0\x10abc"]).await,
        b"COMMAND READ TIMED OUT\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_commands_walk_like_clamd() {
    let sh = shared();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("d");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("0clean.txt"), b"hi").unwrap();
    std::fs::write(root.join("a_eicar.com"), EICAR).unwrap();
    let mut padded = EICAR.to_vec();
    padded.extend(b"\r\n");
    std::fs::write(root.join("b_both.txt"), &padded).unwrap();
    std::fs::write(root.join("sub/x"), EICAR).unwrap();
    std::os::unix::fs::symlink(root.join("a_eicar.com"), root.join("link")).unwrap();
    let clean = d.path().join("clean");
    std::fs::create_dir(&clean).unwrap();
    std::fs::write(clean.join("a"), b"hi").unwrap();
    std::fs::write(clean.join("empty"), b"").unwrap();
    let r = root.display().to_string();
    let c = clean.display().to_string();

    let q = |cmd: &str| format!("n{cmd}\n").into_bytes();
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("SCAN {r}"))]).await),
        format!("{r}/a_eicar.com: Win.Test.EICAR_HDB-1 FOUND\n"),
        "SCAN stops at the first infected file"
    );
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("CONTSCAN {r}/"))]).await),
        format!(
            "{r}/a_eicar.com: Win.Test.EICAR_HDB-1 FOUND\n{r}/b_both.txt: Win.Test.EICAR_NDB-1 FOUND\n{r}/sub/x: Win.Test.EICAR_HDB-1 FOUND\n"
        ),
        "CONTSCAN goes on, skips links, no OK after a hit"
    );
    let mut multi: Vec<String> = s(&talk(&sh, &[&q(&format!("MULTISCAN {r}"))]).await)
        .lines()
        .map(String::from)
        .collect();
    multi.sort();
    assert_eq!(
        multi,
        vec![
            format!("{r}/a_eicar.com: Win.Test.EICAR_HDB-1 FOUND"),
            format!("{r}/b_both.txt: Win.Test.EICAR_NDB-1 FOUND"),
            format!("{r}/sub/x: Win.Test.EICAR_HDB-1 FOUND"),
        ]
    );
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("CONTSCAN {c}"))]).await),
        format!("{c}: OK\n")
    );
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("MULTISCAN {c}/"))]).await),
        format!("{c}: OK\n")
    );
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("SCAN {c}/empty"))]).await),
        format!("{c}/empty: OK\n")
    );
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("SCAN {r}/link"))]).await),
        format!("{r}/link: OK\n"),
        "a symlink is not followed, even at the top (clamd's default)"
    );
    assert_eq!(
        s(&talk(&sh, &[b"nSCAN /nonexistent/x\n"]).await),
        "/nonexistent/x: File path check failure: No such file or directory. ERROR\n"
    );
    assert_eq!(
        s(&talk(&sh, &[b"zMULTISCAN /nonexistent\0"]).await),
        "/nonexistent: File path check failure: No such file or directory. ERROR\0"
    );
    // ALLMATCHSCAN: every finding of a file (a message whose two attachments
    // hit two different signatures); SCAN reports the first.
    let both = d.path().join("both.eml");
    std::fs::write(&both, two_attachments()).unwrap();
    let b = both.display();
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("ALLMATCHSCAN {b}"))]).await),
        format!("{b}: Win.Test.EICAR_HDB-1 FOUND\n{b}: Win.Test.EICAR_NDB-1 FOUND\n")
    );
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("SCAN {b}"))]).await),
        format!("{b}: Win.Test.EICAR_HDB-1 FOUND\n")
    );
    assert_eq!(
        s(&talk(&sh, &[&format!("ALLMATCHSCAN {r}").into_bytes()]).await),
        "UNKNOWN COMMAND\n",
        "no old-style ALLMATCHSCAN"
    );
    // A FIFO at the top: clamd's odd pair of lines.
    let fifo = d.path().join("fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let f = fifo.display();
    assert_eq!(
        s(&talk(&sh, &[&q(&format!("SCAN {f}"))]).await),
        format!("{f}: Not supported file type ERROR\n{f}: OK\n")
    );
    // Inside a session: each line carries the id.
    let out = s(&talk(
        &sh,
        &[format!("zIDSESSION\0zSCAN {c}\0zSCAN {r}/sub\0zEND\0").as_bytes()],
    )
    .await);
    let mut l: Vec<&str> = out.split('\0').filter(|x| !x.is_empty()).collect();
    l.sort();
    assert_eq!(
        l,
        vec![
            format!("1: {c}: OK"),
            format!("2: {r}/sub/x: Win.Test.EICAR_HDB-1 FOUND")
        ]
    );
}

/// A message with EICAR and EICAR+CRLF attached (hash and body signature).
fn two_attachments() -> String {
    let b64 = |d: &[u8]| {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut o = String::new();
        for c in d.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    o.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    o.push('=');
                }
            }
        }
        o
    };
    let mut crlf = EICAR.to_vec();
    crlf.extend(b"\r\n");
    format!(
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"a.com\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"b.com\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        b64(EICAR),
        b64(&crlf)
    )
}

/// An engine that blocks each scan until the test lets it go.
struct Gate {
    open: Arc<(Mutex<bool>, std::sync::Condvar)>,
    entered: Arc<AtomicUsize>,
}

impl Engine for Gate {
    fn kind(&self) -> EngineKind {
        EngineKind::Signatures
    }
    fn scan(
        &self,
        _obj: &ScanObject<'_>,
        _opts: ScanOptions,
        out: &mut Vec<Finding>,
    ) -> Result<(), EngineError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let (m, cv) = &*self.open;
        let mut g = m.lock().unwrap();
        while !*g {
            g = cv.wait(g).unwrap();
        }
        out.push(Finding {
            name: "Old.Engine".into(),
            engine: EngineKind::Signatures,
            severity: mxguard_types::Severity::Infected,
            location: String::new(),
            detail: String::new(),
        });
        Ok(())
    }
}

/// Reload swaps in a new scanner; scans in progress keep theirs.
struct Swapping {
    current: RwLock<Arc<Scanner>>,
    reloads: AtomicUsize,
}

impl ScanService for Swapping {
    fn scanner(&self) -> Arc<Scanner> {
        self.current.read().unwrap().clone()
    }
    fn version(&self) -> String {
        format!("test/{}/x", self.reloads.load(Ordering::SeqCst))
    }
    fn reload(&self) -> Result<(), String> {
        *self.current.write().unwrap() = scanner();
        self.reloads.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_during_a_scan_keeps_the_scan_and_serves_new_ones_with_new_signatures() {
    let open = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let entered = Arc::new(AtomicUsize::new(0));
    let svc = Arc::new(Swapping {
        current: RwLock::new(Arc::new(Scanner::new(vec![Box::new(Gate {
            open: open.clone(),
            entered: entered.clone(),
        })]))),
        reloads: AtomicUsize::new(0),
    });
    let sh = shared_with(svc.clone(), cfg());
    let mut req = b"zINSTREAM\0".to_vec();
    req.extend(encode_instream(b"anything", 100));
    let sh2 = sh.clone();
    let slow = tokio::spawn(async move { talk(&sh2, &[&req]).await });
    while entered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s(&talk(&sh, &[b"nRELOAD\n"]).await), "RELOADING\n");
    while svc.reloads.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // New commands use the new signatures while the old scan still waits.
    let mut e = b"zINSTREAM\0".to_vec();
    e.extend(encode_instream(EICAR, 1000));
    assert_eq!(
        s(&talk(&sh, &[&e]).await),
        "stream: Win.Test.EICAR_HDB-1 FOUND\0"
    );
    assert!(!slow.is_finished());
    *open.0.lock().unwrap() = true;
    open.1.notify_all();
    assert_eq!(s(&slow.await.unwrap()), "stream: Old.Engine FOUND\0");
    assert_eq!(s(&talk(&sh, &[b"nVERSION\n"]).await), "test/1/x\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_when_allowed_cancels_without_a_reply() {
    let sh = shared_with(
        Arc::new(FixedService {
            scanner: scanner(),
            version: "v".into(),
        }),
        SessionConfig {
            allow_shutdown: true,
            ..cfg()
        },
    );
    assert!(!sh.shutdown_request.is_cancelled());
    assert_eq!(talk(&sh, &[b"nSHUTDOWN\n"]).await, b"");
    assert!(sh.shutdown_request.is_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fildes_over_a_unix_socket_scans_the_passed_file() {
    use mxguard_clamd::unix::FdStream;
    use std::os::fd::AsRawFd;
    let sh = shared();
    let d = tempfile::tempdir().unwrap();
    let infected = d.path().join("e.com");
    std::fs::write(&infected, EICAR).unwrap();
    let clean = d.path().join("c.txt");
    std::fs::write(&clean, b"fine").unwrap();

    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let server = FdStream::new(tokio::net::UnixStream::from_std(b).unwrap());
    let q = server.fd_queue();
    let task = tokio::spawn(serve(server, Some(q), "local".into(), sh.clone()));
    let out = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut a = a;
        a.write_all(b"zIDSESSION\0").unwrap();
        for p in [&infected, &clean] {
            let f = std::fs::File::open(p).unwrap();
            a.write_all(b"zFILDES\0").unwrap();
            send_fd(&a, f.as_raw_fd());
        }
        a.write_all(b"zEND\0").unwrap();
        let mut out = Vec::new();
        a.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    task.await.unwrap();
    let out = s(&out);
    let mut l: Vec<&str> = out.split('\0').filter(|x| !x.is_empty()).collect();
    l.sort();
    assert_eq!(l.len(), 2, "{out:?}");
    assert!(
        l[0].starts_with("1: fd[") && l[0].ends_with("]: Win.Test.EICAR_HDB-1 FOUND"),
        "{l:?}"
    );
    assert!(
        l[1].starts_with("2: fd[") && l[1].ends_with("]: OK"),
        "{l:?}"
    );
}

/// Sends one NUL byte carrying `fd` (what clamdscan --fdpass does).
fn send_fd(sock: &std::os::unix::net::UnixStream, fd: i32) {
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: test-only sendmsg with buffers that outlive the call.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(4) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut i32, fd);
        assert_eq!(libc::sendmsg(sock.as_raw_fd(), &msg, 0), 1);
    }
}
