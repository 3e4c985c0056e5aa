//! A private PostgreSQL server for tests and benchmarks: `initdb` + `pg_ctl`
//! in a temporary directory, listening on a free loopback port, run as user
//! `postgres` when we are root (PostgreSQL refuses to run as root).
//!
//! Every server gets a guardian process (its own process group, so a Ctrl-C
//! of the test run does not kill it first) that waits for the test process to
//! exit, then stops the server and removes its directory: the shared server
//! of a test binary is stopped at the end even though Rust tests have no
//! global teardown.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub struct PgServer {
    pub root: PathBuf,
    pub data: PathBuf,
    pub run: PathBuf,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

/// The directory holding initdb and pg_ctl: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`. Panics (the test fails) when there is none.
pub fn pg_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PG_BIN") {
        let p = PathBuf::from(p);
        if p.join("initdb").exists() {
            return p;
        }
        panic!(
            "PG_BIN={} has no initdb: install postgresql (apt-get install postgresql) or fix PG_BIN",
            p.display()
        );
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, PG_BIN unset): \
             install postgresql (apt-get install postgresql) to run the PostgreSQL half of the store tests"
        ),
    }
}

fn am_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn check(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn chown_postgres(p: &Path) {
    check(
        "chown postgres",
        Command::new("chown")
            .arg("postgres:postgres")
            .arg(p)
            .stdin(Stdio::null())
            .output(),
    );
}

impl PgServer {
    fn cmd(&self, prog: &str) -> Command {
        let path = self.bin.join(prog);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        c.stdin(Stdio::null());
        c
    }

    /// initdb and start a new server; fails the test with the reason if it cannot.
    pub fn start_new() -> PgServer {
        let bin = pg_bin();
        let as_postgres = am_root();
        let root = tempfile::Builder::new()
            .prefix("mxguard-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod 755");
        let data = root.join("data");
        let run = root.join("run");
        fs::create_dir(&data).unwrap();
        fs::create_dir(&run).unwrap();
        if as_postgres {
            chown_postgres(&data);
            chown_postgres(&run);
        }
        let mut server = PgServer {
            root,
            data,
            run,
            port: 0,
            bin,
            as_postgres,
        };
        server.guard();
        check(
            "initdb",
            server
                .cmd("initdb")
                .arg("-D")
                .arg(&server.data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
                .output(),
        );
        // A port can be taken between our probe and the server's bind: retry.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    fn try_start(&self) -> Result<(), String> {
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                self.port,
                self.run.display()
            ))
            .arg("-l")
            .arg(self.run.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(self.run.join("server.log")).unwrap_or_default()
            ))
        }
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start(&self) {
        if let Err(e) = self.try_start() {
            panic!("PostgreSQL did not restart: {e}");
        }
    }

    /// Stops the server: `immediate` is a crash (no checkpoint, WAL replay at
    /// the next start), otherwise a fast clean shutdown.
    pub fn stop(&self, immediate: bool) {
        check(
            "pg_ctl stop",
            self.cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args([
                    "-m",
                    if immediate { "immediate" } else { "fast" },
                    "-w",
                    "stop",
                ])
                .output(),
        );
    }

    /// Stops the server and removes its directory once this process is gone.
    // The guardian must outlive us: never waited for, on purpose.
    #[allow(clippy::zombie_processes)]
    fn guard(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- '{}' -D '{}' -m immediate stop",
                pg_ctl.display(),
                self.data.display()
            )
        } else {
            format!(
                "'{}' -D '{}' -m immediate stop",
                pg_ctl.display(),
                self.data.display()
            )
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; {stop} >/dev/null 2>&1; rm -rf '{root}'",
            pid = std::process::id(),
            root = self.root.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn the server's guardian");
    }

    /// URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (if missing) and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        use sqlx::Connection;
        let mut last = None;
        for _ in 0..50 {
            match sqlx::PgConnection::connect(&self.url("postgres")).await {
                Ok(mut c) => {
                    let exists: Option<(i32,)> =
                        sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
                            .bind(name)
                            .fetch_optional(&mut c)
                            .await
                            .expect("query pg_database");
                    if exists.is_none() {
                        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                            .execute(&mut c)
                            .await
                            .expect("CREATE DATABASE");
                    }
                    let _ = c.close().await;
                    return self.url(name);
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("cannot connect to the test PostgreSQL: {last:?}");
    }

    /// The server log (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.run.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.root);
    }
}
