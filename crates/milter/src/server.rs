//! Listeners (TCP and Unix) and the accept loop.

use crate::config::SessionConfig;
use crate::handler::MilterHandler;
use crate::session::{Session, SessionEnd};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where a milter listener listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A listen address that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a listen address (IP:PORT, inet:PORT@IP or unix:/path)")]
pub struct ListenAddrError(pub String);

impl FromStr for ListenAddr {
    type Err = ListenAddrError;
    /// `127.0.0.1:7357`, `[::1]:7357`, `inet:7357@127.0.0.1`,
    /// `inet6:7357@::1`, `unix:/path` or `local:/path`.
    fn from_str(s: &str) -> Result<ListenAddr, ListenAddrError> {
        let err = || ListenAddrError(s.to_string());
        if let Some(p) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
            if p.is_empty() {
                return Err(err());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(p)));
        }
        if let Some(rest) = s.strip_prefix("inet:").or_else(|| s.strip_prefix("inet6:")) {
            let (port, host) = rest.split_once('@').ok_or_else(err)?;
            let port: u16 = port.parse().map_err(|_| err())?;
            let ip = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| err())?;
            return Ok(ListenAddr::Tcp(SocketAddr::new(ip, port)));
        }
        s.parse().map(ListenAddr::Tcp).map_err(|_| err())
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// The socket file is removed when [`serve`] returns.
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

impl Listener {
    /// Binds `addr`. For a Unix socket: a stale socket file (nobody
    /// listening) is removed first, a live one or a file that is not a
    /// socket is an error; `mode` sets the socket's permissions.
    pub async fn bind(addr: &ListenAddr, mode: Option<u32>) -> io::Result<Listener> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a).await?)),
            ListenAddr::Unix(path) => {
                remove_stale_socket(path).await?;
                let listener = UnixListener::bind(path)?;
                if let Some(m) = mode {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m))?;
                }
                Ok(Listener::Unix {
                    listener,
                    path: path.clone(),
                })
            }
        }
    }

    /// The bound TCP address (to learn an ephemeral port).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix { .. } => None,
        }
    }
}

async fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; not removing it",
                path.display()
            ),
        ));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another process listens on {}", path.display()),
        ));
    }
    tracing::info!(path = %path.display(), "milter: removing stale socket file");
    std::fs::remove_file(path)
}

/// Accepts MTA connections until `shutdown`, running one [`Session`] per
/// connection on `tracker` (wait on it for a clean stop). Over
/// `config.max_connections` a new connection is closed at once; the MTA
/// then applies its default action for this filter.
pub async fn serve<H: MilterHandler>(
    listener: Listener,
    handler: Arc<H>,
    config: Arc<SessionConfig>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    loop {
        let accepted = match &listener {
            Listener::Tcp(l) => tokio::select! {
                a = l.accept() => a.map(|(s, peer)| {
                    let _ = s.set_nodelay(true);
                    (Box::new(s) as Box<dyn Stream>, peer.to_string())
                }),
                _ = shutdown.cancelled() => break,
            },
            Listener::Unix { listener: l, path } => tokio::select! {
                a = l.accept() => a.map(|(s, _)| (Box::new(s) as Box<dyn Stream>, format!("unix:{}", path.display()))),
                _ = shutdown.cancelled() => break,
            },
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("milter: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "milter: too many connections; closing this one");
            continue;
        };
        let (h, c, sd) = (handler.clone(), config.clone(), shutdown.clone());
        tracker.spawn(async move {
            let _permit = permit;
            tracing::debug!(%peer, "milter: connection");
            match Session::new(stream, h, c).run(sd).await {
                SessionEnd::Protocol(e) => tracing::warn!(%peer, "milter: protocol error: {e}"),
                SessionEnd::Io(e) => tracing::info!(%peer, "milter: connection failed: {e}"),
                SessionEnd::Timeout => tracing::info!(%peer, "milter: connection timed out"),
                end => tracing::debug!(%peer, ?end, "milter: connection closed"),
            }
        });
    }
    if let Listener::Unix { path, .. } = &listener {
        let _ = std::fs::remove_file(path);
    }
}

/// A connection of either kind.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let ok = [
            ("127.0.0.1:7357", "127.0.0.1:7357"),
            ("[::1]:7357", "[::1]:7357"),
            ("inet:7357@127.0.0.1", "127.0.0.1:7357"),
            ("inet6:7357@[::1]", "[::1]:7357"),
            ("unix:/run/m.sock", "unix:/run/m.sock"),
            ("local:/run/m.sock", "unix:/run/m.sock"),
        ];
        for (s, shown) in ok {
            assert_eq!(s.parse::<ListenAddr>().unwrap().to_string(), shown, "{s}");
        }
        for bad in [
            "",
            "unix:",
            "inet:x@127.0.0.1",
            "inet:25@host.example",
            "localhost:25",
            "7357",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }
}
