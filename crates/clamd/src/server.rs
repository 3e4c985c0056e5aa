//! TCP and Unix listeners: bind (with the configured backlog, stale Unix
//! socket files removed, permissions set), serve at most `max_connections`
//! sessions at once (each listener holds at most one more accepted
//! connection while it waits for a slot; the rest wait in the backlog), and
//! stop cleanly.

use crate::pool::{Pool, PoolConfig};
use crate::service::ScanService;
use crate::session::{self, SessionConfig, Shared};
use crate::unix::FdStream;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::{TcpListener, TcpSocket, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AddrError {
    #[error("\"unix:\" needs a socket path, e.g. \"unix:/run/mxguard/clamd.sock\"")]
    EmptyUnixPath,
    #[error(
        "{0:?} is neither \"IP:PORT\" (e.g. \"127.0.0.1:3310\", \"[::1]:3310\") nor \"unix:/path\""
    )]
    Invalid(String),
}

impl FromStr for ListenAddr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(AddrError::EmptyUnixPath);
            }
            return Ok(ListenAddr::Unix(PathBuf::from(p)));
        }
        s.parse::<SocketAddr>()
            .map(ListenAddr::Tcp)
            .map_err(|_| AddrError::Invalid(s.to_string()))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Everything the server needs, built from [`ClamdConfig`](crate::ClamdConfig).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: Vec<ListenAddr>,
    pub backlog: u32,
    /// Permissions of Unix socket files.
    pub unix_mode: u32,
    pub max_connections: usize,
    pub pool: PoolConfig,
    pub session: SessionConfig,
}

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}: another server answers on this socket")]
    InUse(PathBuf),
    #[error("{0}: exists and is not a socket; not removing it")]
    NotASocket(PathBuf),
}

enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// Bound listeners, not yet accepting.
pub struct ClamdServer {
    shared: Arc<Shared>,
    bound: Vec<Bound>,
    max_connections: usize,
}

/// Accepting listeners; [`stop`](Running::stop) them at shutdown.
pub struct Running {
    shared: Arc<Shared>,
    accept_stop: CancellationToken,
    tracker: TaskTracker,
    unix_paths: Vec<PathBuf>,
}

fn bind_err(addr: &impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::Bind {
        addr: addr.to_string(),
        source,
    }
}

/// Removes a socket file left by a server that is gone; refuses to touch a
/// live socket or anything that is not a socket.
fn clear_stale(path: &Path) -> Result<(), ServerError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(bind_err(&path.display()))
        }
        Ok(_) => Err(ServerError::NotASocket(path.to_path_buf())),
    }
}

impl ClamdServer {
    /// Binds every listener (all or none: an error leaves nothing bound).
    pub async fn bind(
        opts: &ServerOptions,
        service: Arc<dyn ScanService>,
    ) -> Result<ClamdServer, ServerError> {
        let mut bound = Vec::new();
        for a in &opts.listen {
            match a {
                ListenAddr::Tcp(sa) => {
                    let s = if sa.is_ipv4() {
                        TcpSocket::new_v4()
                    } else {
                        TcpSocket::new_v6()
                    }
                    .map_err(bind_err(a))?;
                    s.set_reuseaddr(true).map_err(bind_err(a))?;
                    s.bind(*sa).map_err(bind_err(a))?;
                    bound.push(Bound::Tcp(s.listen(opts.backlog).map_err(bind_err(a))?));
                }
                ListenAddr::Unix(p) => {
                    if let Err(e) = clear_stale(p) {
                        cleanup(&bound);
                        return Err(e);
                    }
                    let l = match UnixListener::bind(p) {
                        Ok(l) => l,
                        Err(e) => {
                            cleanup(&bound);
                            return Err(bind_err(a)(e));
                        }
                    };
                    // Set the requested backlog (listen() again only changes it).
                    // SAFETY: `l` owns an open, bound, listening socket.
                    unsafe { libc::listen(l.as_raw_fd(), opts.backlog as libc::c_int) };
                    use std::os::unix::fs::PermissionsExt;
                    let perm = std::fs::Permissions::from_mode(opts.unix_mode);
                    bound.push(Bound::Unix(l, p.clone()));
                    if let Err(e) = std::fs::set_permissions(p, perm) {
                        cleanup(&bound);
                        return Err(bind_err(a)(e));
                    }
                }
            }
        }
        let shared = Arc::new(Shared::new(
            service,
            Pool::new(opts.pool.clone()),
            opts.session.clone(),
        ));
        Ok(ClamdServer {
            shared,
            bound,
            max_connections: opts.max_connections.max(1),
        })
    }

    /// The bound TCP addresses (with the real port when 0 was asked).
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.bound
            .iter()
            .filter_map(|b| match b {
                Bound::Tcp(l) => l.local_addr().ok(),
                Bound::Unix(..) => None,
            })
            .collect()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts accepting on every listener.
    pub fn start(self) -> Running {
        let accept_stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let mut unix_paths = Vec::new();
        for b in self.bound {
            let (shared, stop, tr, limit) = (
                self.shared.clone(),
                accept_stop.clone(),
                tracker.clone(),
                limit.clone(),
            );
            match b {
                Bound::Tcp(l) => {
                    if let Ok(a) = l.local_addr() {
                        tracing::info!(addr = %a, "clamd socket listening");
                    }
                    tokio::spawn(async move {
                        loop {
                            let (s, peer) = tokio::select! {
                                _ = stop.cancelled() => return,
                                a = l.accept() => match a {
                                    Ok(x) => x,
                                    Err(e) => { backoff(e).await; continue; }
                                },
                            };
                            // Accept first, then wait for a slot: a slot is never held
                            // by a listener that has nobody to accept.
                            let Some(permit) = acquire(&limit, &stop).await else {
                                return;
                            };
                            let _ = s.set_nodelay(true);
                            let sh = shared.clone();
                            tr.spawn(async move {
                                session::serve(s, None, peer.to_string(), sh).await;
                                drop(permit);
                            });
                        }
                    });
                }
                Bound::Unix(l, path) => {
                    tracing::info!(path = %path.display(), "clamd socket listening");
                    unix_paths.push(path);
                    tokio::spawn(async move {
                        loop {
                            let s = tokio::select! {
                                _ = stop.cancelled() => return,
                                a = l.accept() => match a {
                                    Ok((s, _)) => s,
                                    Err(e) => { backoff(e).await; continue; }
                                },
                            };
                            let Some(permit) = acquire(&limit, &stop).await else {
                                return;
                            };
                            let sh = shared.clone();
                            tr.spawn(async move {
                                let s = FdStream::new(s);
                                let q = s.fd_queue();
                                session::serve(s, Some(q), "local".into(), sh).await;
                                drop(permit);
                            });
                        }
                    });
                }
            }
        }
        Running {
            shared: self.shared,
            accept_stop,
            tracker,
            unix_paths,
        }
    }
}

fn cleanup(bound: &[Bound]) {
    for b in bound {
        if let Bound::Unix(_, p) = b {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn acquire(
    limit: &Arc<Semaphore>,
    stop: &CancellationToken,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        _ = stop.cancelled() => None,
        p = limit.clone().acquire_owned() => p.ok(),
    }
}

/// EMFILE and friends: back off a little instead of spinning.
async fn backoff(e: std::io::Error) {
    tracing::warn!("clamd: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

impl Running {
    /// Cancelled when a client sent an allowed `SHUTDOWN`.
    pub fn shutdown_requested(&self) -> CancellationToken {
        self.shared.shutdown_request.clone()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, ends sessions waiting for a command, lets commands in
    /// progress finish for up to `grace`, then removes the Unix socket files.
    pub async fn stop(self, grace: Duration) {
        self.accept_stop.cancel();
        self.shared.stopping.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "clamd: sessions still busy after {} s; closing",
                grace.as_secs()
            );
        }
        self.shared.pool.close();
        for p in &self.unix_paths {
            let _ = std::fs::remove_file(p);
        }
    }
}
