//! One client connection, generic over the stream (tests drive it in memory).
//!
//! Outside IDSESSION a connection carries one command: its reply is written
//! and the connection closed (later bytes are ignored, as clamd does). Inside
//! IDSESSION commands are numbered from 1, dispatched to the scan pool as they
//! arrive, and answered `ID: reply` as each finishes (so replies may come out
//! of order); `END`, end of input, an invalid command or a protocol error
//! ends the session after the replies in progress are written.
//!
//! Timeouts (clamd's): `CommandReadTimeout` for the first command,
//! `ReadTimeout` for everything after (next command inside a session, stream
//! data, the FILDES byte). A timeout answers `COMMAND READ TIMED OUT` and
//! closes.

use crate::pool::{Pool, PoolError};
use crate::proto::{
    format_stats, next_request, text, version_commands, Command, Frame, InstreamDecoder, Line,
    Style,
};
use crate::scan::{outcome, outcome_lines, scan_one_file, walk, Counts, Outcome, PathMode};
use crate::service::ScanService;
use mxguard_types::ScanOptions;
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// clamd's defaults.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_COMMAND_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// File descriptors received but not yet claimed by a FILDES: more than this
/// and the client is cut off (each one holds a slot of our descriptor table).
pub const MAX_PENDING_FDS: usize = 8;

/// INSTREAM data held in memory per connection; a longer stream is written to
/// an anonymous temporary file (clamd always uses one) and read back by the
/// scan thread, so memory is bounded by connections × this + threads × stream.
pub const STREAM_MEMORY_LIMIT: usize = 4 << 20;

/// How much one read asks for.
const READ_CHUNK: usize = 64 * 1024;

/// Per-connection behaviour.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `ReadTimeout`; also bounds the writing of each reply (a client that
    /// stops reading is dropped, and the scan it holds stops).
    pub read_timeout: Duration,
    pub command_read_timeout: Duration,
    /// `StreamMaxLength`: bytes one INSTREAM may carry.
    pub stream_max_length: u64,
    /// `SHUTDOWN`/`QUIT` stop the server (otherwise `COMMAND UNAVAILABLE`).
    pub allow_shutdown: bool,
    /// clamd's `AllowAllMatchScan`.
    pub allow_all_match_scan: bool,
    /// clamd's `TemporaryDirectory`: where long streams are spooled.
    pub temp_dir: PathBuf,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            read_timeout: DEFAULT_READ_TIMEOUT,
            command_read_timeout: DEFAULT_COMMAND_READ_TIMEOUT,
            stream_max_length: crate::proto::DEFAULT_STREAM_MAX_LENGTH,
            allow_shutdown: false,
            allow_all_match_scan: true,
            temp_dir: std::env::temp_dir(),
        }
    }
}

/// File descriptors received with SCM_RIGHTS, in arrival order.
pub type FdQueue = Arc<Mutex<VecDeque<OwnedFd>>>;

/// What every session shares.
pub struct Shared {
    pub service: Arc<dyn ScanService>,
    pub pool: Pool,
    pub cfg: SessionConfig,
    /// Cancelled by an allowed `SHUTDOWN`: the embedding server stops.
    pub shutdown_request: CancellationToken,
    /// Cancelled when the server stops: sessions waiting for a command end.
    pub stopping: CancellationToken,
    reloading: Arc<AtomicBool>,
}

impl Shared {
    pub fn new(service: Arc<dyn ScanService>, pool: Pool, cfg: SessionConfig) -> Shared {
        Shared {
            service,
            pool,
            cfg,
            shutdown_request: CancellationToken::new(),
            stopping: CancellationToken::new(),
            reloading: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts a reload in the background unless one is running; scans keep
    /// the scanner they started with.
    pub fn reload(&self) {
        if self.reloading.swap(true, Ordering::SeqCst) {
            return;
        }
        let svc = self.service.clone();
        let flag = self.reloading.clone();
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            match svc.reload() {
                Ok(()) => tracing::info!(
                    version = %svc.version(),
                    "clamd: signatures reloaded in {:.2} s",
                    t.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    tracing::warn!("clamd: reload failed, keeping the loaded signatures: {e}")
                }
            }
            flag.store(false, Ordering::SeqCst);
        });
    }

    /// Whether a reload is in progress.
    pub fn is_reloading(&self) -> bool {
        self.reloading.load(Ordering::SeqCst)
    }
}

/// The write side, shared by the replies in progress of one session.
struct Out<W> {
    w: tokio::sync::Mutex<W>,
    dead: AtomicBool,
    timeout: Duration,
}

impl<W: AsyncWrite + Unpin> Out<W> {
    /// Writes one whole reply; false once the client is gone or stuck.
    async fn send(&self, bytes: &[u8]) -> bool {
        if self.dead.load(Ordering::Relaxed) {
            return false;
        }
        let mut w = self.w.lock().await;
        let ok = matches!(
            tokio::time::timeout(self.timeout, async {
                w.write_all(bytes).await?;
                w.flush().await
            })
            .await,
            Ok(Ok(()))
        );
        if !ok {
            self.dead.store(true, Ordering::Relaxed);
        }
        ok
    }

    async fn line(&self, id: Option<u32>, l: &Line, term: u8) -> bool {
        self.send(&l.encode(id, term)).await
    }
}

enum Read {
    Data,
    Closed,
    TimedOut,
}

async fn read_more<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut Vec<u8>,
    timeout: Duration,
    stop: Option<&CancellationToken>,
) -> Read {
    buf.reserve(READ_CHUNK);
    let read = tokio::time::timeout(timeout, rd.read_buf(buf));
    let r = match stop {
        Some(stop) => tokio::select! {
            biased;
            _ = stop.cancelled() => return Read::Closed,
            r = read => r,
        },
        None => read.await,
    };
    match r {
        Err(_) => Read::TimedOut,
        Ok(Ok(0)) | Ok(Err(_)) => Read::Closed,
        Ok(Ok(_)) => Read::Data,
    }
}

/// Work that goes to the pool.
enum Job {
    Stream(Vec<u8>),
    StreamFile(std::fs::File),
    Fd(OwnedFd),
    Path(PathMode, Vec<u8>),
    Multi(Vec<u8>),
}

/// A new file in `dir` that only this process can reach: created with mode
/// 0600 under a unique name, then unlinked at once (closed means gone).
async fn temp_file(dir: &Path) -> std::io::Result<tokio::fs::File> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = dir.join(format!(
        "mxguard-clamd-{}-{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let f = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&name)
        .await?;
    tokio::fs::remove_file(&name).await?;
    Ok(f)
}

/// Serves one connection until it ends. `fds` is the queue of descriptors
/// received on a Unix socket (`None`: FILDES never gets one); `peer` names
/// the client in logs and `STATS`.
pub async fn serve<S>(stream: S, fds: Option<FdQueue>, peer: String, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(stream);
    let out = Arc::new(Out {
        w: tokio::sync::Mutex::new(wr),
        dead: AtomicBool::new(false),
        timeout: shared.cfg.read_timeout,
    });
    let cfg = shared.cfg.clone();
    let mut buf: Vec<u8> = Vec::new();
    let mut in_session = false;
    let mut id: u32 = 0;
    let mut term = b'\n';
    let mut seen_command = false;
    let mut inflight: JoinSet<()> = JoinSet::new();

    loop {
        let timeout = if seen_command {
            cfg.read_timeout
        } else {
            cfg.command_read_timeout
        };
        let (request, consumed) = match next_request(&buf) {
            Frame::TooLong => {
                tracing::debug!(%peer, "clamd: command too long, closing");
                break;
            }
            Frame::Incomplete => {
                match read_more(&mut rd, &mut buf, timeout, Some(&shared.stopping)).await {
                    Read::Data => continue,
                    Read::Closed => break,
                    Read::TimedOut => {
                        out.send(text::COMMAND_READ_TIMED_OUT).await;
                        break;
                    }
                }
            }
            Frame::Request { request, consumed } => (request, consumed),
        };
        buf.drain(..consumed);
        seen_command = true;
        let rid = if in_session {
            id += 1;
            Some(id)
        } else {
            None
        };
        if in_session && request.style == Style::Old {
            out.line(rid, &Line::error(None, text::OLD_STYLE_IN_SESSION), term)
                .await;
            out.line(rid, &Line::error(None, text::ERROR_PROCESSING), term)
                .await;
            break;
        }
        term = request.style.term();
        if in_session && !request.command.allowed_in_session() {
            out.line(rid, &Line::error(None, text::INVALID_IN_SESSION), term)
                .await;
            break;
        }
        let job = match request.command {
            Command::Ping => {
                out.line(rid, &Line::bare(text::PONG), term).await;
                None
            }
            Command::Version => {
                let v = shared.service.version();
                out.line(rid, &Line::bare(v), term).await;
                None
            }
            Command::VersionCommands => {
                let v = version_commands(&shared.service.version());
                out.line(rid, &Line::bare(v), term).await;
                None
            }
            Command::Stats => {
                let t = Instant::now();
                let mut s = shared.pool.snapshot();
                let mem = shared.service.memory();
                s.pools_used = mem;
                s.pools_total = mem;
                s.tasks
                    .push(("STATS".into(), t.elapsed().as_secs_f64(), String::new()));
                let mut bytes = rid
                    .map(|i| format!("{i}: ").into_bytes())
                    .unwrap_or_default();
                bytes.extend(format_stats(&s, term));
                out.send(&bytes).await;
                None
            }
            Command::IdSession => {
                in_session = true;
                continue;
            }
            Command::End => {
                if !in_session {
                    out.line(None, &Line::bare(text::UNKNOWN_COMMAND), term)
                        .await;
                }
                break;
            }
            Command::Reload => {
                out.line(None, &Line::bare(text::RELOADING), term).await;
                shared.reload();
                break;
            }
            Command::Shutdown => {
                if cfg.allow_shutdown {
                    tracing::info!(%peer, "clamd: SHUTDOWN requested");
                    shared.shutdown_request.cancel();
                } else {
                    out.line(None, &Line::bare(text::COMMAND_UNAVAILABLE), term)
                        .await;
                }
                break;
            }
            // Removed by clamd: it closes without a word.
            Command::DetStats | Command::DetStatsClear => break,
            Command::Unknown => {
                out.line(None, &Line::bare(text::UNKNOWN_COMMAND), term)
                    .await;
                break;
            }
            Command::Scan(p) => Some(Job::Path(PathMode::Scan, p)),
            Command::ContScan(p) => Some(Job::Path(PathMode::Cont, p)),
            Command::AllMatchScan(p) => {
                if !cfg.allow_all_match_scan {
                    let l = Line::error(
                        Some(&p),
                        "ALLMATCHSCAN command disabled by clamd configuration.",
                    );
                    out.line(rid, &l, term).await;
                    break;
                }
                Some(Job::Path(PathMode::AllMatch, p))
            }
            // Directories are walked in parallel; anything else is a CONTSCAN
            // (decided on the pool: no file system calls on the runtime).
            Command::MultiScan(p) => Some(Job::Multi(p)),
            Command::Instream => {
                let mut dec = InstreamDecoder::new(cfg.stream_max_length);
                let mut data = Vec::new();
                // Past STREAM_MEMORY_LIMIT the stream goes to an anonymous temporary
                // file, so open connections cannot pile up memory.
                let mut spill: Option<tokio::fs::File> = None;
                let done = loop {
                    match dec.feed(&buf, &mut data) {
                        Ok(f) => {
                            buf.drain(..f.consumed);
                            let big = spill.is_some() || data.len() > STREAM_MEMORY_LIMIT;
                            if big && !data.is_empty() {
                                if spill.is_none() {
                                    match temp_file(&cfg.temp_dir).await {
                                        Ok(f) => spill = Some(f),
                                        Err(e) => {
                                            tracing::error!(dir = %cfg.temp_dir.display(), "clamd: INSTREAM: cannot create a temporary file: {e}");
                                            break false;
                                        }
                                    }
                                }
                                if let Some(file) = spill.as_mut() {
                                    if let Err(e) = file.write_all(&data).await {
                                        tracing::error!(
                                            "clamd: INSTREAM: cannot write the temporary file: {e}"
                                        );
                                        break false;
                                    }
                                }
                                data.clear();
                            }
                            if f.done {
                                break true;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%peer, "clamd: {e}");
                            out.line(rid, &Line::error(None, text::SIZE_LIMIT), term)
                                .await;
                            break false;
                        }
                    }
                    match read_more(&mut rd, &mut buf, cfg.read_timeout, None).await {
                        Read::Data => {}
                        Read::Closed => break false,
                        Read::TimedOut => {
                            out.send(text::COMMAND_READ_TIMED_OUT).await;
                            break false;
                        }
                    }
                };
                if !done {
                    break;
                }
                match spill {
                    None => Some(Job::Stream(data)),
                    Some(mut f) => {
                        if f.flush().await.is_err() {
                            break;
                        }
                        Some(Job::StreamFile(f.into_std().await))
                    }
                }
            }
            Command::Fildes => {
                // The descriptor travels with one dummy byte after the command.
                let mut got = !buf.is_empty();
                while !got {
                    match read_more(&mut rd, &mut buf, timeout, None).await {
                        Read::Data => got = !buf.is_empty(),
                        Read::Closed => break,
                        Read::TimedOut => {
                            out.send(text::COMMAND_READ_TIMED_OUT).await;
                            break;
                        }
                    }
                }
                if !got {
                    break;
                }
                buf.drain(..1);
                let fd = fds
                    .as_ref()
                    .and_then(|q| q.lock().unwrap_or_else(|e| e.into_inner()).pop_front());
                match fd {
                    Some(fd) => Some(Job::Fd(fd)),
                    None => {
                        out.line(rid, &Line::error(None, text::NO_FD), term).await;
                        break;
                    }
                }
            }
        };
        if let Some(job) = job {
            let (sh, o, p) = (shared.clone(), out.clone(), peer.clone());
            if in_session {
                // Queue it now (waits while the pool's queue is full), reply when done.
                match submit(job, &sh, o.clone(), rid, term, p).await {
                    Ok(reply) => {
                        inflight.spawn(reply);
                    }
                    Err(_) => {
                        o.line(rid, &Line::error(None, text::ERROR_PROCESSING), term)
                            .await;
                        break;
                    }
                }
            } else {
                match submit(job, &sh, o.clone(), rid, term, p).await {
                    Ok(reply) => reply.await,
                    Err(_) => {
                        o.line(rid, &Line::error(None, text::ERROR_PROCESSING), term)
                            .await;
                    }
                }
            }
        }
        if let Some(q) = &fds {
            if q.lock().unwrap_or_else(|e| e.into_inner()).len() > MAX_PENDING_FDS {
                out.line(rid, &Line::error(None, text::FD_WITHOUT_FILDES), term)
                    .await;
                break;
            }
        }
        if !in_session || out.dead.load(Ordering::Relaxed) {
            break;
        }
        // Finished replies need no joining; keep the set small.
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    let mut w = out.w.lock().await;
    let _ = w.shutdown().await;
}

type Reply = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Puts `job` on the pool and returns the future that writes its replies.
async fn submit<W>(
    job: Job,
    shared: &Arc<Shared>,
    out: Arc<Out<W>>,
    id: Option<u32>,
    term: u8,
    peer: String,
) -> Result<Reply, PoolError>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let scanner = shared.service.scanner();
    let pool = shared.pool.clone();
    match job {
        Job::Stream(data) => {
            let h = pool
                .submit("INSTREAM", move |ctx| {
                    ctx.set_file(&format!("instream({peer})"));
                    let r = scanner.scan_bytes(&data, ScanOptions::default());
                    outcome_lines(text::STREAM, &outcome(&r, false))
                })
                .await?;
            Ok(Box::pin(async move {
                let lines = h.wait().await.unwrap_or_else(|e| vec![internal(e)]);
                for l in lines {
                    out.line(id, &l, term).await;
                }
            }))
        }
        Job::StreamFile(mut f) => {
            let h = pool
                .submit("INSTREAM", move |ctx| {
                    ctx.set_file(&format!("instream({peer})"));
                    use std::io::{Read as _, Seek, SeekFrom};
                    let mut data = Vec::new();
                    let o = match f
                        .seek(SeekFrom::Start(0))
                        .and_then(|_| f.read_to_end(&mut data))
                    {
                        Ok(_) => outcome(&scanner.scan_bytes(&data, ScanOptions::default()), false),
                        Err(e) => Outcome::Error(format!("Can't read the temporary file ({e})")),
                    };
                    outcome_lines(text::STREAM, &o)
                })
                .await?;
            Ok(Box::pin(async move {
                let lines = h.wait().await.unwrap_or_else(|e| vec![internal(e)]);
                for l in lines {
                    out.line(id, &l, term).await;
                }
            }))
        }
        Job::Fd(fd) => {
            let h = pool
                .submit("FILDES", move |ctx| {
                    let name = format!("fd[{}]", fd.as_raw_fd());
                    ctx.set_file(&name);
                    let mut f = std::fs::File::from(fd);
                    let regular = f.metadata().map(|m| m.is_file()).unwrap_or(false);
                    if !regular {
                        return vec![Line::error(Some(name.as_bytes()), text::NOT_REGULAR)];
                    }
                    use std::io::{Read as _, Seek, SeekFrom};
                    let mut data = Vec::new();
                    let read = f
                        .seek(SeekFrom::Start(0))
                        .and_then(|_| f.read_to_end(&mut data));
                    let o = match read {
                        Ok(_) => outcome(&scanner.scan_bytes(&data, ScanOptions::default()), false),
                        Err(_) => Outcome::Error(text::CANT_OPEN.into()),
                    };
                    outcome_lines(name.as_bytes(), &o)
                })
                .await?;
            Ok(Box::pin(async move {
                let lines = h.wait().await.unwrap_or_else(|e| vec![internal(e)]);
                for l in lines {
                    out.line(id, &l, term).await;
                }
            }))
        }
        Job::Path(mode, path) => {
            let top = crate::scan::normalize(&path);
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Line>(64);
            let name = match mode {
                PathMode::Scan => "SCAN",
                PathMode::Cont => "CONTSCAN",
                PathMode::AllMatch => "ALLMATCHSCAN",
                PathMode::Multi => "MULTISCAN",
            };
            let t2 = top.clone();
            let h = pool
                .submit(name, move |ctx| {
                    let mut files = Vec::new();
                    walk(&scanner, &t2, mode, Some(ctx), &mut files, &mut |l| {
                        tx.blocking_send(l).is_ok()
                    })
                })
                .await?;
            Ok(Box::pin(async move {
                while let Some(l) = rx.recv().await {
                    if !out.line(id, &l, term).await {
                        break; // dropping rx stops the walk
                    }
                }
                drop(rx);
                match h.wait().await {
                    Ok(c) if c.ok() => {
                        out.line(id, &Line::ok(&top), term).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        out.line(id, &internal(e), term).await;
                    }
                }
            }))
        }
        Job::Multi(path) => {
            let top = crate::scan::normalize(&path);
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Line>(64);
            let t2 = top.clone();
            let sc = scanner.clone();
            let h = pool
                .submit("MULTISCAN", move |ctx| {
                    let is_dir = std::fs::metadata(OsStr::from_bytes(&t2))
                        .map(|m| m.is_dir())
                        .unwrap_or(false);
                    let mode = if is_dir {
                        PathMode::Multi
                    } else {
                        PathMode::Cont
                    };
                    let mut files = Vec::new();
                    let c = walk(&sc, &t2, mode, Some(ctx), &mut files, &mut |l| {
                        tx.blocking_send(l).is_ok()
                    });
                    (c, files)
                })
                .await?;
            Ok(Box::pin(async move {
                while let Some(l) = rx.recv().await {
                    if !out.line(id, &l, term).await {
                        break;
                    }
                }
                drop(rx);
                let (mut counts, files): (Counts, Vec<Vec<u8>>) = match h.wait().await {
                    Ok(x) => x,
                    Err(e) => {
                        out.line(id, &internal(e), term).await;
                        return;
                    }
                };
                let mut set = JoinSet::new();
                for f in files {
                    if out.dead.load(Ordering::Relaxed) {
                        break;
                    }
                    counts.total += 1;
                    let sc = scanner.clone();
                    let fp = f.clone();
                    let h = match pool
                        .submit("MULTISCANFILE", move |ctx| {
                            ctx.set_file(&String::from_utf8_lossy(&fp));
                            scan_one_file(&sc, &fp, false)
                        })
                        .await
                    {
                        Ok(h) => h,
                        Err(e) => {
                            counts.errors += 1;
                            out.line(id, &internal(e), term).await;
                            break;
                        }
                    };
                    let o2 = out.clone();
                    set.spawn(async move {
                        let o = h
                            .wait()
                            .await
                            .unwrap_or_else(|e| Outcome::Error(e.to_string()));
                        if o != Outcome::Clean {
                            for l in outcome_lines(&f, &o) {
                                o2.line(id, &l, term).await;
                            }
                        }
                        o
                    });
                }
                while let Some(r) = set.join_next().await {
                    match r {
                        Ok(Outcome::Found(_)) => counts.infected += 1,
                        Ok(Outcome::Error(_)) | Err(_) => counts.errors += 1,
                        Ok(Outcome::Clean) => {}
                    }
                }
                if counts.ok() {
                    out.line(id, &Line::ok(&top), term).await;
                }
            }))
        }
    }
}

fn internal(e: PoolError) -> Line {
    tracing::error!("clamd: {e}");
    Line::error(None, text::ERROR_PROCESSING)
}
