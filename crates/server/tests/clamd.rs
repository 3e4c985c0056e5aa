//! The clamd-compatible socket end to end: the real `mxguard serve` with
//! `[clamd]` on TCP and a Unix socket, driven by real clients.
//!
//! - the real `clamdscan` (`--stream`, `--fdpass`, `--multiscan`,
//!   `--allmatch` and combinations) on ClamAV's test files, EICAR and clean
//!   files: its results must equal `mxguard scan` on the same files;
//! - a Python client written from clamd's documentation
//!   (`tests/clamd/client.py`) sends the same requests to mxguard and to a
//!   private real clamd loaded with the same database: the raw reply bytes
//!   must be equal (threat names without clamd's `.UNOFFICIAL` suffix), except
//!   VERSION, VERSIONCOMMANDS' version and STATS' numbers, checked by shape;
//! - IDSESSION with many files, RELOAD during a scan, idle scan threads
//!   ending, Unix socket permissions, stale socket removal and SHUTDOWN.
//!
//! The database is built with `sigtool --md5` (as ClamAV users do), so
//! clamdscan has more to find than EICAR. Never skips: without clamd,
//! clamdscan, sigtool, python3 or the test files the tests fail (`.ci/run`
//! installs them).

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, need, wait_port, Gateway, EICAR};

const TESTFILES: &str = "/usr/share/clamav-testfiles";
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clamd/client.py");

/// Signature database, files to scan, and their paths.
struct Fixture {
    dir: tempfile::TempDir,
    db: PathBuf,
    /// One infected file (EICAR), clean files, a clean subdirectory.
    one: PathBuf,
    /// EICAR, clam.exe, clam.zip, an empty file, a clean file, a subdirectory with EICAR.
    mixed: PathBuf,
    clean: PathBuf,
    eicar: PathBuf,
}

fn fixture() -> Fixture {
    assert!(
        Path::new(TESTFILES).join("clam.exe").is_file(),
        "{TESTFILES} missing: install clamav-testfiles"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let db = root.join("db");
    std::fs::create_dir(&db).unwrap();
    let eicar = root.join("eicar.com");
    std::fs::write(&eicar, EICAR).unwrap();
    // sigtool --md5 FILE prints `md5:size:FILE`; the name is the file name.
    let sigtool = need("sigtool", "clamav");
    let md5 = |file: &Path, name: &str| {
        let out = Command::new(&sigtool)
            .arg("--md5")
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success(), "sigtool --md5 failed");
        let line = String::from_utf8(out.stdout).unwrap();
        let mut f = line.trim().splitn(3, ':');
        format!("{}:{}:{name}\n", f.next().unwrap(), f.next().unwrap())
    };
    std::fs::write(
        db.join("clam.hdb"),
        md5(&Path::new(TESTFILES).join("clam.exe"), "clam.exe"),
    )
    .unwrap();
    std::fs::write(db.join("eicar.hdb"), md5(&eicar, "Win.Test.EICAR_HDB-1")).unwrap();

    let one = root.join("one");
    std::fs::create_dir_all(one.join("sub")).unwrap();
    std::fs::write(one.join("a.txt"), b"nothing to see").unwrap();
    std::fs::write(one.join("m_eicar.com"), EICAR).unwrap();
    std::fs::write(one.join("sub/z.txt"), b"clean too").unwrap();
    let mixed = root.join("mixed");
    std::fs::create_dir_all(mixed.join("sub")).unwrap();
    std::fs::write(mixed.join("eicar.com"), EICAR).unwrap();
    std::fs::copy(
        Path::new(TESTFILES).join("clam.exe"),
        mixed.join("clam.exe"),
    )
    .unwrap();
    std::fs::copy(
        Path::new(TESTFILES).join("clam.zip"),
        mixed.join("clam.zip"),
    )
    .unwrap();
    std::fs::write(mixed.join("empty"), b"").unwrap();
    std::fs::write(mixed.join("note.txt"), b"hello\n").unwrap();
    std::fs::write(mixed.join("sub/eicar2"), EICAR).unwrap();
    let clean = root.join("clean");
    std::fs::create_dir_all(clean.join("deeper")).unwrap();
    std::fs::write(clean.join("a"), b"hello").unwrap();
    std::fs::write(clean.join("deeper/b"), b"world").unwrap();
    Fixture {
        dir,
        db,
        one,
        mixed,
        clean,
        eicar,
    }
}

/// `mxguard serve` with the clamd socket on a TCP port and a Unix socket.
struct Mx {
    g: Gateway,
    port: u16,
    sock: PathBuf,
}

fn start_mxguard(fx: &Fixture, db: &Path, clamd_extra: &str) -> Mx {
    let port = free_port();
    let sock = fx.dir.path().join(format!("mx-{port}.sock"));
    let mut g = Gateway::start(
        "",
        &format!(
            "[engine]\nsignatures = [\"{}\"]\nbuiltin = false\n\n[clamd]\nlisten = [\"127.0.0.1:{port}\", \"unix:{}\"]\n{clamd_extra}\n",
            db.display(),
            sock.display()
        ),
    );
    wait_port(port, &mut g.child, &g.log);
    Mx { g, port, sock }
}

/// clamdscan configs for TCP and for the Unix socket (FILDES needs the latter).
fn clamdscan_confs(dir: &Path, port: u16, sock: &Path) -> (PathBuf, PathBuf) {
    let tcp = dir.join(format!("tcp-{port}.conf"));
    std::fs::write(&tcp, format!("TCPSocket {port}\nTCPAddr 127.0.0.1\n")).unwrap();
    let unix = dir.join(format!("unix-{port}.conf"));
    std::fs::write(&unix, format!("LocalSocket {}\n", sock.display())).unwrap();
    (tcp, unix)
}

/// `mxguard scan --json` per file: the threat names in order, each with
/// whether it is a signature hit; and errors.
fn mxguard_scan(
    db: &Path,
    all_match: bool,
    targets: &[&Path],
) -> BTreeMap<String, Vec<(String, bool)>> {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mxguard"));
    c.args(["scan", "--json", "--no-cache", "--no-builtin", "--db"])
        .arg(db);
    if all_match {
        c.arg("--all-match");
    }
    let out = c.args(targets).output().unwrap();
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_ne!(v["verdict"], "error", "mxguard scan: {line}");
        let threats = v["threats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    t["engine"] == "signatures",
                )
            })
            .collect();
        m.insert(v["path"].as_str().unwrap().to_string(), threats);
    }
    assert!(!m.is_empty(), "mxguard scan printed nothing");
    m
}

/// What clamd answers without all-match: the first signature hit, else the first finding.
fn primary(threats: &[(String, bool)]) -> Option<String> {
    threats
        .iter()
        .find(|t| t.1)
        .or(threats.first())
        .map(|t| t.0.clone())
}

/// (path, name) for each `path: NAME FOUND` line, and the `path: OK` lines.
fn parse_found(out: &str) -> (Vec<(String, String)>, BTreeSet<String>) {
    let mut found = Vec::new();
    let mut ok = BTreeSet::new();
    for l in out.lines() {
        if let Some(rest) = l.strip_suffix(" FOUND") {
            let (p, n) = rest.rsplit_once(": ").unwrap();
            found.push((p.to_string(), n.to_string()));
        } else if let Some(p) = l.strip_suffix(": OK") {
            ok.insert(p.to_string());
        }
    }
    found.sort();
    (found, ok)
}

fn python(addr: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut c = Command::new("python3");
    c.arg(CLIENT).arg(addr).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c
        .output()
        .expect("python3 not found: install python3 (.ci/run does)");
    assert!(
        out.status.success(),
        "client.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cases(addr: &str, fx: &Fixture, names: &[&str]) -> BTreeMap<String, (String, f64)> {
    let mut args = vec!["cases"];
    args.extend_from_slice(names);
    let out = python(
        addr,
        &args,
        &[
            ("EICAR", &fx.eicar),
            ("FILE", &fx.eicar),
            ("DIR", &fx.one),
            ("MIXED", &fx.mixed),
            ("CLEAN", &fx.clean),
        ],
    );
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let v: BTreeMap<String, (String, f64)> = serde_json::from_str(line).unwrap();
        m.extend(v);
    }
    m
}

#[test]
fn clamdscan_in_every_mode_equals_mxguard_scan() {
    let fx = fixture();
    let mx = start_mxguard(&fx, &fx.db, "");
    let clamdscan = need("clamdscan", "clamdscan");
    let (tcp, unix) = clamdscan_confs(fx.dir.path(), mx.port, &mx.sock);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&mx.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "default unix_socket_mode");

    let testfiles = Path::new(TESTFILES);
    let targets = [testfiles, fx.mixed.as_path(), fx.clean.as_path()];
    let first = mxguard_scan(&fx.db, false, &targets);
    let all = mxguard_scan(&fx.db, true, &targets);
    let want_first: Vec<(String, String)> = first
        .iter()
        .filter_map(|(p, t)| primary(t).map(|n| (p.clone(), n)))
        .collect();
    let mut want_all: Vec<(String, String)> = all
        .iter()
        .flat_map(|(p, t)| t.iter().map(move |(n, _)| (p.clone(), n.clone())))
        .collect();
    want_all.sort();
    assert!(
        want_first.len() >= 28,
        "mxguard scan finds too little to compare: {want_first:?}"
    );
    let clean_ok: BTreeSet<String> = [fx.clean.display().to_string()].into();

    let modes: &[(&[&str], &Path)] = &[
        (&["--stream"], &tcp),
        (&["--fdpass"], &unix),
        (&["--multiscan"], &tcp),
        (&["--allmatch"], &tcp),
        (&["--multiscan", "--fdpass"], &unix),
        (&["--multiscan", "--stream"], &tcp),
    ];
    for (flags, conf) in modes {
        let out = Command::new(&clamdscan)
            .arg(format!("--config-file={}", conf.display()))
            .arg("--no-summary")
            .args(*flags)
            .args(targets)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "clamdscan {flags:?}: exit 1 (found) expected\n{stdout}\n{stderr}\n{}",
            mx.g.log_text()
        );
        assert!(!stderr.contains("ERROR"), "clamdscan {flags:?}: {stderr}");
        let (found, ok) = parse_found(&stdout);
        let want = if flags.contains(&"--allmatch") {
            &want_all
        } else {
            &want_first
        };
        assert_eq!(&found, want, "clamdscan {flags:?}\n{stdout}");
        assert_eq!(ok, clean_ok, "clamdscan {flags:?}: OK lines\n{stdout}");
    }
}

/// A private clamd on a free port, stopped by its pid.
struct Clamd {
    child: Child,
    port: u16,
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut r = String::new();
    s.write_all(b"nPING\n").is_ok() && s.read_to_string(&mut r).is_ok() && r == "PONG\n"
}

fn start_clamd(fx: &Fixture, extra: &str) -> Clamd {
    let clamd = need("clamd", "clamav-daemon");
    let port = free_port();
    let d = fx.dir.path().join(format!("clamd-{port}"));
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let conf = d.join("clamd.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nForeground yes\nLogFile {}\nPidFile {}\nTemporaryDirectory {}\n{extra}\n",
            fx.db.display(),
            d.join("clamd.log").display(),
            d.join("clamd.pid").display(),
            d.join("tmp").display()
        ),
    )
    .unwrap();
    let child = Command::new(clamd)
        .arg(format!("--config-file={}", conf.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = Clamd { child, port };
    let t = Instant::now();
    while !ping(port) {
        if let Ok(Some(st)) = c.child.try_wait() {
            panic!(
                "clamd exited ({st}): {}",
                std::fs::read_to_string(d.join("clamd.log")).unwrap_or_default()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "clamd never answered PING"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c
}

#[test]
fn raw_replies_equal_real_clamds_byte_for_byte() {
    let fx = fixture();
    let clamd = start_clamd(
        &fx,
        "StreamMaxLength 1M\nCommandReadTimeout 2\nReadTimeout 3\nAllowAllMatchScan yes",
    );
    let mx = start_mxguard(
        &fx,
        &fx.db,
        "stream_max_length = \"1M\"\ncommand_read_timeout_secs = 2\nread_timeout_secs = 3\n",
    );
    let same: &[&str] = &[
        "ping_old",
        "ping_old_crlf",
        "ping_n",
        "ping_z",
        "ping_n_crlf",
        "ping_trailing",
        "ping_lower",
        "pingpong",
        "empty_n",
        "empty_z",
        "unknown_n",
        "unknown_z",
        "unknown_old",
        "end_without_session",
        "scan_no_argument",
        "scan_missing",
        "scan_missing_z",
        "scan_file",
        "scan_file_old",
        "scan_tab_separator",
        "scan_dir",
        "contscan_dir",
        "allmatchscan_dir",
        "allmatchscan_old",
        "multiscan_file",
        "contscan_clean",
        "scan_clean_trailing_slash",
        "instream_eicar_z",
        "instream_eicar_n_small_chunks",
        "instream_clean",
        "instream_empty",
        "instream_old_style",
        "instream_oversized_chunk",
        "instream_exactly_the_limit",
        "instream_one_byte_over",
        "instream_split_everywhere",
        "instream_then_more",
        "two_commands",
        "versioncommands_old",
        "stats_old",
        "detstats",
        "idsession_n",
        "idsession_mixed_terminators",
        "idsession_contscan",
        "idsession_old_style",
        "idsession_unknown",
        "idsession_oversized",
        "idsession_nested",
        "idsession_only_end",
        "idsession_fildes_without_fd",
        "command_too_long",
        "command_long_but_fits",
        "path_too_long",
        "idle_connection",
        "partial_command",
        "stalled_stream",
        "idle_session",
    ];
    // Several infected files: clamd walks in directory order, MULTISCAN and
    // IDSESSION answer in completion order; compared as sets of lines.
    let unordered = [
        "contscan_mixed",
        "multiscan_mixed",
        "idsession_scan_mixed",
        "idsession",
    ];
    let shaped = [
        "version_n",
        "versioncommands_z",
        "stats_z",
        "stats_in_session",
    ];
    let mut all: Vec<&str> = same.to_vec();
    all.extend(unordered);
    all.extend(shaped);
    let theirs = cases(&format!("127.0.0.1:{}", clamd.port), &fx, &all);
    let ours = cases(&format!("127.0.0.1:{}", mx.port), &fx, &all);
    let mut diffs = Vec::new();
    for c in same {
        let t = theirs[*c].0.replace(".UNOFFICIAL", "");
        let o = &ours[*c].0;
        if &t != o {
            diffs.push(format!("{c}:\n  clamd:   {t:?}\n  mxguard: {o:?}"));
        }
    }
    assert!(diffs.is_empty(), "replies differ:\n{}", diffs.join("\n"));
    // The timeouts took as long as configured (clamd rounds up to whole seconds).
    for (c, secs) in [
        ("idle_connection", 2.0),
        ("partial_command", 2.0),
        ("stalled_stream", 3.0),
        ("idle_session", 3.0),
    ] {
        let t = ours[c].1;
        assert!(t >= secs - 0.15 && t <= secs + 3.0, "{c}: {t} s");
        assert_eq!(ours[c].0.matches("COMMAND READ TIMED OUT\n").count(), 1);
    }
    let lines = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .replace(".UNOFFICIAL", "")
            .split_inclusive(['\0', '\n'])
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    for c in unordered {
        assert_eq!(lines(&theirs[c].0), lines(&ours[c].0), "{c}");
    }
    assert_eq!(
        lines(&ours["idsession"].0).len(),
        4,
        "{:?}",
        ours["idsession"]
    );
    assert_eq!(
        lines(&ours["multiscan_mixed"].0).len(),
        4,
        "{:?}",
        ours["multiscan_mixed"]
    );
    // VERSION: clamd's three-field form with our name.
    let v = &ours["version_n"].0;
    let fields: Vec<&str> = v.trim_end_matches('\n').split('/').collect();
    assert_eq!(fields.len(), 3, "{v:?}");
    assert_eq!(fields[0], format!("mxguard {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(fields[1], "2", "two signatures, no container version");
    assert_eq!(fields[2].len(), 24, "ctime: {v:?}");
    assert!(v.ends_with('\n') && theirs["version_n"].0.starts_with("ClamAV "));
    let after_version = |s: &str| s.split_once('|').map(|x| x.1.to_string());
    assert_eq!(
        after_version(&ours["versioncommands_z"].0),
        after_version(&theirs["versioncommands_z"].0)
    );
    // STATS: same layout, different numbers.
    for c in ["stats_z", "stats_in_session"] {
        for (who, s) in [("clamd", &theirs[c].0), ("mxguard", &ours[c].0)] {
            let s = s.strip_prefix("1: ").unwrap_or(s);
            assert!(
                s.starts_with("POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live "),
                "{who} {c}: {s:?}"
            );
            assert!(
                s.contains(" items") && s.contains("\nQUEUE: "),
                "{who} {c}: {s:?}"
            );
            assert!(s.contains("\tSTATS "), "{who} {c}: {s:?}");
            assert!(
                s.contains("\nMEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A pools 1 pools_used "),
                "{who} {c}: {s:?}"
            );
            assert!(s.ends_with("M\nEND\0"), "{who} {c}: {s:?}");
        }
    }
    // SHUTDOWN is off by default here (clamd 1.4 always obeys it).
    let o = cases(&format!("127.0.0.1:{}", mx.port), &fx, &["shutdown"]);
    assert_eq!(o["shutdown"].0, "COMMAND UNAVAILABLE\n");
}

#[test]
fn idsession_with_many_files_and_idle_threads_ending() {
    let fx = fixture();
    let mx = start_mxguard(&fx, &fx.db, "max_threads = 3\nidle_timeout_secs = 1\n");
    let mut files: Vec<PathBuf> = std::fs::read_dir(TESTFILES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.extend([
        fx.eicar.clone(),
        fx.mixed.join("note.txt"),
        fx.mixed.join("empty"),
    ]);
    let expect = mxguard_scan(
        &fx.db,
        false,
        &files.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
    );
    let mut args = vec!["idsession".to_string()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    for addr in [
        format!("127.0.0.1:{}", mx.port),
        format!("unix:{}", mx.sock.display()),
    ] {
        let out = python(&addr, &args, &[]);
        let replies: BTreeMap<String, Vec<String>> = serde_json::from_str(&out).unwrap();
        assert_eq!(replies.len(), files.len() * 2, "{out}");
        let mut infected = 0;
        for (i, f) in files.iter().enumerate() {
            let p = f.display().to_string();
            let want = primary(&expect[&p]);
            let (stream_id, scan_id) = ((2 * i + 1).to_string(), (2 * i + 2).to_string());
            let (stream_want, scan_want) = match &want {
                Some(n) => {
                    infected += 1;
                    (format!("stream: {n} FOUND"), format!("{p}: {n} FOUND"))
                }
                None => ("stream: OK".to_string(), format!("{p}: OK")),
            };
            assert_eq!(replies[&stream_id], vec![stream_want], "{p}");
            assert_eq!(replies[&scan_id], vec![scan_want], "{p}");
        }
        assert!(infected >= 26, "only {infected} infected files");
    }
    // Idle scan threads end after idle_timeout_secs.
    std::thread::sleep(Duration::from_millis(2500));
    let o = cases(&format!("127.0.0.1:{}", mx.port), &fx, &["stats_z"]);
    assert!(
        o["stats_z"]
            .0
            .contains("THREADS: live 0  idle 0 max 3 idle-timeout 1\n"),
        "{}",
        o["stats_z"].0
    );
}

/// Files the in-flight scan of the reload test walks (about 3 s in a debug build).
const RELOAD_FILES: usize = 2000;

#[test]
fn reload_during_a_scan_keeps_the_scan_and_loads_new_signatures() {
    let fx = fixture();
    let db = fx.dir.path().join("db-reload");
    std::fs::create_dir(&db).unwrap();
    for e in std::fs::read_dir(&fx.db).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), db.join(e.file_name())).unwrap();
    }
    // Many copies of a file no signature knows yet.
    let many = fx.dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    let fresh: Vec<u8> = (0..32768u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for i in 0..RELOAD_FILES {
        std::fs::write(many.join(format!("f{i:05}")), &fresh).unwrap();
    }
    let mx = start_mxguard(&fx, &db, "");
    let addr = format!("127.0.0.1:{}", mx.port);
    let contscan = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", mx.port)).unwrap();
        s.write_all(format!("nCONTSCAN {}\n", many.display()).as_bytes())
            .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    };
    // A signature update adds a database file for it; RELOAD comes while a
    // CONTSCAN started with the old signatures is walking the files.
    let sigtool = need("sigtool", "clamav");
    let out = Command::new(sigtool)
        .arg("--md5")
        .arg(many.join("f00000"))
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    let (hash_size, _) = line.trim().rsplit_once(':').unwrap();
    std::fs::write(db.join("fresh.hdb"), format!("{hash_size}:Test.Fresh-1\n")).unwrap();
    let out = python(
        &addr,
        &["reload-during-scan", &many.display().to_string()],
        &[],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["reload"], "RELOADING\n");
    assert_ne!(v["before"], v["after"]);
    assert_eq!(
        v["after"].as_str().unwrap().split('/').nth(1),
        Some("3"),
        "{out}"
    );
    assert_eq!(
        v["scan_running_after_reload"], true,
        "the scan must still be running when the reload is done: {out}"
    );
    // The scan in progress finished on the signatures it started with.
    assert_eq!(
        v["scan_result"],
        format!("{}: OK\n", many.display()),
        "{out}"
    );
    // New scans use the new ones.
    let after = contscan();
    assert_eq!(after.lines().count(), RELOAD_FILES, "{after}");
    assert!(after.lines().all(|l| l.ends_with(": Test.Fresh-1 FOUND")));
    assert!(mx.g.log_text().contains("signatures reloaded"));
}

#[test]
fn unix_socket_permissions_stale_file_and_shutdown() {
    let fx = fixture();
    let sock = fx.dir.path().join("stale.sock");
    // A socket file left by a server that is gone.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let port = free_port();
    let mut g = Gateway::start(
        "",
        &format!(
            "[engine]\nsignatures = [\"{}\"]\nbuiltin = false\n\n[clamd]\nlisten = [\"unix:{}\", \"127.0.0.1:{port}\"]\nunix_socket_mode = \"640\"\nallow_shutdown = true\n",
            fx.db.display(),
            sock.display()
        ),
    );
    wait_port(port, &mut g.child, &g.log);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(b"zPING\0").unwrap();
    let mut r = Vec::new();
    s.read_to_end(&mut r).unwrap();
    assert_eq!(r, b"PONG\0");
    // SHUTDOWN (allowed here): no reply, mxguard exits cleanly, the socket file goes.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(b"nSHUTDOWN\n").unwrap();
    let mut r = Vec::new();
    s.read_to_end(&mut r).unwrap();
    assert!(r.is_empty(), "{r:?}");
    let t = Instant::now();
    let st = loop {
        if let Some(st) = g.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no exit after SHUTDOWN"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(st.success(), "{st}: {}", g.log_text());
    assert!(!sock.exists(), "socket file removed at shutdown");

    // A live socket is never taken over.
    let live = fx.dir.path().join("live.sock");
    let _holder = std::os::unix::net::UnixListener::bind(&live).unwrap();
    let cfg = fx.dir.path().join("live.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[smtp]\nlisten = [\"127.0.0.1:{}\"]\n[clamd]\nlisten = [\"unix:{}\"]\n",
            fx.dir.path().join("data2").display(),
            free_port(),
            live.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another server answers on this socket"),
        "{err}"
    );
}
