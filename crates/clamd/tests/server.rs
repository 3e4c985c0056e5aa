//! Listeners: connection limit, Unix socket files (stale, live, not a
//! socket, permissions, removal), and stopping with idle sessions open.

use mxguard_clamd::pool::PoolConfig;
use mxguard_clamd::session::SessionConfig;
use mxguard_clamd::{ClamdServer, FixedService, ListenAddr, ServerError, ServerOptions};
use mxguard_engine::{load_signatures, Scanner, SignatureConfig, SignatureEngine};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn service() -> Arc<FixedService> {
    let (set, _) = load_signatures(&SignatureConfig {
        paths: vec![],
        builtin: true,
        cache_dir: None,
    });
    Arc::new(FixedService {
        scanner: Arc::new(Scanner::new(vec![Box::new(SignatureEngine::new(
            Arc::new(set),
        ))])),
        version: "v".into(),
    })
}

fn opts(listen: Vec<ListenAddr>) -> ServerOptions {
    ServerOptions {
        listen,
        backlog: 16,
        unix_mode: 0o600,
        max_connections: 1,
        pool: PoolConfig::default(),
        session: SessionConfig {
            command_read_timeout: Duration::from_secs(30),
            ..Default::default()
        },
    }
}

fn ping_tcp(addr: std::net::SocketAddr) -> std::thread::JoinHandle<(String, Duration)> {
    std::thread::spawn(move || {
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"nPING\n").unwrap();
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        (r, t.elapsed())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_queues_clients_and_stop_ends_idle_sessions() {
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("c.sock");
    let server = ClamdServer::bind(
        &opts(vec![
            "127.0.0.1:0".parse().unwrap(),
            ListenAddr::Unix(sock.clone()),
        ]),
        service(),
    )
    .await
    .unwrap();
    let addr = server.tcp_addrs()[0];
    assert_ne!(addr.port(), 0);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let running = server.start();
    // One idle connection takes the only slot: the next client waits in the backlog.
    let idle = std::net::TcpStream::connect(addr).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = ping_tcp(addr);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "served beyond max_connections");
    drop(idle);
    let (r, el) = tokio::task::spawn_blocking(move || waiting.join().unwrap())
        .await
        .unwrap();
    assert_eq!(r, "PONG\n");
    assert!(el >= Duration::from_millis(450), "{el:?}");
    // Stopping ends a session that waits for its first command at once.
    let _idle2 = std::net::TcpStream::connect(addr).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    running.stop(Duration::from_secs(10)).await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(!sock.exists(), "socket file removed");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn unix_socket_files_stale_live_and_foreign() {
    let d = tempfile::tempdir().unwrap();
    // Stale: replaced.
    let stale = d.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let s = ClamdServer::bind(&opts(vec![ListenAddr::Unix(stale.clone())]), service())
        .await
        .unwrap();
    let r = s.start();
    let mut c = std::os::unix::net::UnixStream::connect(&stale).unwrap();
    c.write_all(b"zPING\0").unwrap();
    let mut out = Vec::new();
    let _ = tokio::task::spawn_blocking(move || {
        c.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .map(|o| assert_eq!(o, b"PONG\0"));
    // Live: refused, and nothing else of the same bind is left behind.
    let other = d.path().join("other.sock");
    let e = ClamdServer::bind(
        &opts(vec![
            ListenAddr::Unix(other.clone()),
            ListenAddr::Unix(stale.clone()),
        ]),
        service(),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, ServerError::InUse(ref p) if p == &stale), "{e}");
    assert!(!other.exists(), "partial bind cleaned up");
    r.stop(Duration::from_secs(5)).await;
    // Not a socket: never deleted.
    let file = d.path().join("precious.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let e = ClamdServer::bind(&opts(vec![ListenAddr::Unix(file.clone())]), service())
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ServerError::NotASocket(_)), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}
