//! The web console end to end: the real `mxguard serve` (EICAR quarantined,
//! local Maildir delivery, the console on a loopback port), driven in
//! Debian's Chromium by `crates/web/tests/browser/console.mjs` through
//! playwright-core: log in, see an EICAR message sent with swaks in the
//! quarantine, release it and find it delivered, edit the policy (validate,
//! dry run, save) and see the next message tagged. Screenshots go to
//! `target/tmp/web-screenshots/`. Missing node, chromium, swaks or the npm
//! modules fail the test (`.ci/run` installs them).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, need, Gateway};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/tests/browser")
}

/// The first-start admin password, from the log.
fn admin_password(g: &Gateway) -> String {
    let t = Instant::now();
    loop {
        let log = g.log_text();
        if let Some(i) = log.find("created with password: ") {
            let rest = &log[i + "created with password: ".len()..];
            return rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no admin password in the log: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn console_in_chromium_quarantine_release_and_policy() {
    let node = need("node", "nodejs");
    need("chromium", "chromium");
    need("swaks", "swaks");
    let modules = browser_dir().join("node_modules/playwright-core");
    assert!(
        modules.exists(),
        "{} missing: run `npm ci` in {} (.ci/run does)",
        modules.display(),
        browser_dir().display()
    );
    let web_port = free_port();
    let mut g = Gateway::start(
        "",
        &format!(
            "[actions]\ninfected = \"quarantine\"\n\n[web]\nlisten = \"127.0.0.1:{web_port}\"\n"
        ),
    );
    support::wait_port(web_port, &mut g.child, &g.log);
    let password = admin_password(&g);
    assert_eq!(password.len(), 20);
    // The CLI: an auditor with a password from standard input.
    let mut c = Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(["user", "add", "audrey", "--role", "auditor", "--config"])
        .arg(&g.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "added audrey (auditor)"
    );
    let o = g.mxguard(&["user", "list"]);
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(list.contains("admin") && list.contains("audrey"), "{list}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let out = Command::new(node)
        .arg(browser_dir().join("console.mjs"))
        .current_dir(browser_dir())
        .env("MXG_BASE", format!("http://127.0.0.1:{web_port}"))
        .env("MXG_USER", "admin")
        .env("MXG_PASS", &password)
        .env("MXG_SMTP_PORT", g.port.to_string())
        .env("MXG_MAILDIR", g.data().join("maildir"))
        .env("MXG_SHOTS", &shots)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("all checks passed"),
        "browser test failed:\n{text}\n--- mxguard log ---\n{}",
        g.log_text()
    );
    println!("{text}");
    // What the browser did is in the store and on disk.
    let q = g.quarantine_records();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["releases"][0]["by"], "admin");
    let policy = std::fs::read_to_string(g.data().join("policy.toml")).unwrap();
    assert!(policy.contains("[PROJECT-X]"), "{policy}");
    assert!(
        std::fs::read_dir(&shots).unwrap().count() >= 10,
        "screenshots in {}",
        shots.display()
    );
    assert!(g
        .log_text()
        .contains("policy saved from the console and applied"));
}

/// `curl` with the given arguments; (status line and headers, body).
fn curl(args: &[&str]) -> String {
    let bin = need("curl", "curl");
    let o = Command::new(bin).args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn console_over_tls_with_secure_cookies_and_one_first_password() {
    let web_port = free_port();
    let mut g = Gateway::start(
        "",
        &format!("[web]\nlisten = \"127.0.0.1:{web_port}\"\ntls = true\nsession_hours = 1\n"),
    );
    support::wait_port(web_port, &mut g.child, &g.log);
    let password = admin_password(&g);
    let base = format!("https://127.0.0.1:{web_port}");
    // The self-signed certificate of data_dir/tls (curl -k: it is not trusted).
    let r = curl(&["-ksi", &format!("{base}/")]);
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    assert!(r.contains("location: /login"), "{r}");
    let r = curl(&[
        "-ksi",
        "--data-urlencode",
        "user=admin",
        "--data-urlencode",
        &format!("password={password}"),
        &format!("{base}/login"),
    ]);
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    let cookie_line = r
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {r}"));
    assert!(
        cookie_line.contains("; Secure")
            && cookie_line.contains("HttpOnly")
            && cookie_line.contains("Max-Age=3600"),
        "{cookie_line}"
    );
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string();
    let r = curl(&["-ksi", "-b", &cookie, &format!("{base}/system")]);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.contains("web (https)"),
        "the system page lists the listener: {r}"
    );
    // Plain HTTP on the TLS port gets nowhere.
    let r = curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{web_port}/"),
    ]);
    assert_ne!(r, "200", "{r}");

    // A restart does not make another password; `user passwd` sets one from stdin.
    g.terminate();
    let before = g.log_text().matches("created with password").count();
    g.child = support::spawn(&g.config, &g.log, &[]);
    support::wait_port(web_port, &mut g.child, &g.log);
    assert_eq!(
        g.log_text().matches("created with password").count(),
        before,
        "one generated password, on the first start only"
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(["user", "passwd", "admin", "--config"])
        .arg(&g.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(b"another long password\n")
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    let r = curl(&["-ksi", "-b", &cookie, &format!("{base}/system")]);
    assert!(
        r.starts_with("HTTP/1.1 303"),
        "a new password ends the sessions: {r}"
    );
    let r = curl(&[
        "-ksi",
        "--data-urlencode",
        "user=admin",
        "--data-urlencode",
        "password=another long password",
        &format!("{base}/login"),
    ]);
    assert!(
        r.starts_with("HTTP/1.1 303") && r.contains("mxguard_session="),
        "{r}"
    );
}
