//! The listener: accepts connections, applies the connection limits and the
//! connect-time checks (IP allow list, IP deny list, DNSBL — in that order,
//! before anything is read from the client), runs a [`Session`] and, after
//! STARTTLS, a second one inside TLS.

use crate::dnsbl::Dnsbl;
use crate::proto::Reply;
use crate::relay::{ConnectDecision, IpLists};
use crate::session::{Ending, Handler, Session, SessionConfig, SessionInfo};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One SMTP listener's shared state.
pub struct Server<H> {
    pub cfg: Arc<SessionConfig>,
    pub handler: Arc<H>,
    pub tls: Option<TlsAcceptor>,
    pub ip_lists: IpLists,
    pub dnsbl: Option<Dnsbl>,
    pub max_connections: Arc<Semaphore>,
    pub max_per_ip: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Releases the per-IP count when a connection ends.
struct IpSlot<'a> {
    map: &'a Mutex<HashMap<IpAddr, usize>>,
    ip: IpAddr,
}

impl Drop for IpSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

async fn refuse<S: AsyncWrite + Unpin>(mut s: S, r: Reply) {
    let _ = s.write_all(&r.to_wire()).await;
    let _ = s.shutdown().await;
}

impl<H: Handler> Server<H> {
    pub fn new(
        cfg: SessionConfig,
        handler: Arc<H>,
        tls: Option<TlsAcceptor>,
        ip_lists: IpLists,
        dnsbl: Option<Dnsbl>,
        max_connections: usize,
        max_per_ip: usize,
    ) -> Self {
        let mut cfg = cfg;
        cfg.starttls = cfg.starttls && tls.is_some();
        Server {
            cfg: Arc::new(cfg),
            handler,
            tls,
            ip_lists,
            dnsbl,
            max_connections: Arc::new(Semaphore::new(max_connections)),
            max_per_ip,
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    /// Accepts until `shutdown`; each session is tracked by `tracker` so the
    /// caller can wait for them.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.cancelled() => return,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            let sd = shutdown.clone();
            tracker.spawn(async move { me.connection(stream, peer, sd).await });
        }
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) {
        let local = stream.local_addr().unwrap_or(peer);
        let Ok(_permit) = self.max_connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections: refused");
            return refuse(
                stream,
                Reply::new(421, Some("4.7.0"), "Too many connections, try again later"),
            )
            .await;
        };
        let ip = peer.ip();
        let over = {
            let mut m = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = m.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                true
            } else {
                *n += 1;
                false
            }
        };
        if over {
            tracing::warn!(%peer, "too many connections from this address: refused");
            return refuse(
                stream,
                Reply::new(
                    421,
                    Some("4.7.0"),
                    "Too many connections from your address, try again later",
                ),
            )
            .await;
        }
        let _slot = IpSlot {
            map: &self.per_ip,
            ip,
        };
        match self.ip_lists.check(ip) {
            ConnectDecision::Denied => {
                tracing::info!(%peer, "connection refused: client IP on the deny list");
                return refuse(
                    stream,
                    Reply::new(
                        554,
                        Some("5.7.1"),
                        format!("Client address [{ip}] is denied by local policy"),
                    ),
                )
                .await;
            }
            ConnectDecision::Allowed => {}
            ConnectDecision::Neutral => {
                if let Some(dnsbl) = &self.dnsbl {
                    if let Some(hit) = dnsbl.check(ip).await {
                        tracing::info!(%peer, zone = %hit.zone, answer = %hit.answer, "connection refused: listed in DNSBL");
                        let text = format!(
                            "Service unavailable; client [{ip}] blocked using {}{}",
                            hit.zone,
                            hit.text
                                .as_deref()
                                .map(|t| format!(": {t}"))
                                .unwrap_or_default()
                        );
                        return refuse(stream, Reply::new(554, Some("5.7.1"), text)).await;
                    }
                }
            }
        }
        let info = SessionInfo {
            peer,
            local,
            helo: None,
            esmtp: false,
            tls: false,
            tls_info: None,
            trusted: self.cfg.relay.is_trusted(ip),
        };
        self.run(stream, info, shutdown).await;
    }

    /// Runs the session; after STARTTLS the TLS session.
    pub async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &self,
        stream: S,
        info: SessionInfo,
        shutdown: CancellationToken,
    ) {
        let session = Session::new(
            stream,
            info.clone(),
            self.cfg.clone(),
            self.handler.clone(),
            shutdown.clone(),
        );
        let (ending, session) = session.run(true).await;
        if ending != Ending::StartTls {
            return;
        }
        let Some(acceptor) = &self.tls else { return };
        let stream = session.into_inner();
        match tokio::time::timeout(self.cfg.command_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                let (_, conn) = tls.get_ref();
                let tls_info = match (conn.protocol_version(), conn.negotiated_cipher_suite()) {
                    (Some(v), Some(c)) => Some(format!("version={:?} cipher={:?}", v, c.suite())),
                    _ => None,
                };
                let info = SessionInfo {
                    helo: None,
                    esmtp: false,
                    tls: true,
                    tls_info,
                    ..info
                };
                let s = Session::new(tls, info, self.cfg.clone(), self.handler.clone(), shutdown);
                let _ = s.run(false).await;
            }
            Ok(Err(e)) => tracing::info!(peer = %info.peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::info!(peer = %info.peer, "TLS handshake timed out"),
        }
    }
}
