//! The clamd protocol without I/O: command framing and parsing, INSTREAM chunk
//! decoding, and every reply format, byte for byte as clamd 1.4 writes them.
//!
//! Reference: `man clamd`, clamd's `server-th.c` (`get_cmd`, `handle_stream`),
//! `session.c` (`parse_command`, `conn_reply*`), `thrmgr.c` (`thrmgr_printstats`),
//! and replies recorded from a real clamd 1.4.6 (see the tests below and
//! `crates/server/tests/clamd.rs`, which compares with a running clamd).
//!
//! Nothing here panics on any input; `fuzz/fuzz_targets/clamd_command.rs`
//! drives [`next_request`] and [`InstreamDecoder`] with random bytes.

use memchr::memchr;
use thiserror::Error;

/// clamd's command buffer: `PATH_MAX + 8` bytes. A command (prefix and
/// terminator included) that does not fit is dropped by closing the connection
/// without a reply, as clamd does.
pub const MAX_COMMAND_LEN: usize = 4096 + 8;

/// The INSTREAM chunk header: a 4-byte big-endian length.
pub const CHUNK_HEADER_LEN: usize = 4;

/// Default `StreamMaxLength` (clamd 1.x: 100 MiB).
pub const DEFAULT_STREAM_MAX_LENGTH: u64 = 100 * 1024 * 1024;

/// The commands in clamd's table order, as listed by `VERSIONCOMMANDS`.
pub const COMMAND_NAMES: &[&str] = &[
    "SCAN",
    "QUIT",
    "RELOAD",
    "PING",
    "CONTSCAN",
    "VERSIONCOMMANDS",
    "VERSION",
    "END",
    "SHUTDOWN",
    "MULTISCAN",
    "FILDES",
    "STATS",
    "IDSESSION",
    "INSTREAM",
    "DETSTATSCLEAR",
    "DETSTATS",
    "ALLMATCHSCAN",
];

/// How a command was framed; replies end with the matching terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `zCOMMAND\0`: replies end with NUL.
    Z,
    /// `nCOMMAND\n`: replies end with a newline.
    N,
    /// A bare command, one packet, optionally ending with a newline: replies
    /// end with a newline. Not accepted inside IDSESSION, and not every
    /// command exists in this form.
    Old,
}

impl Style {
    /// The byte that ends each reply line to a command of this style.
    pub fn term(self) -> u8 {
        match self {
            Style::Z => 0,
            Style::N | Style::Old => b'\n',
        }
    }
}

/// A parsed command. Paths are raw bytes (clamd passes them to the file
/// system as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Scan(Vec<u8>),
    ContScan(Vec<u8>),
    MultiScan(Vec<u8>),
    AllMatchScan(Vec<u8>),
    Ping,
    Version,
    VersionCommands,
    Reload,
    /// `SHUTDOWN`, and its old alias `QUIT`.
    Shutdown,
    End,
    Fildes,
    Stats,
    IdSession,
    Instream,
    /// Removed by clamd (it closes the connection without a reply); kept so
    /// that the same happens here.
    DetStats,
    DetStatsClear,
    /// Not a command, a missing or extra argument, or a command that does not
    /// exist in the old style.
    Unknown,
}

impl Command {
    /// Whether clamd accepts the command inside an IDSESSION.
    pub fn allowed_in_session(&self) -> bool {
        matches!(
            self,
            Command::Fildes
                | Command::Scan(_)
                | Command::End
                | Command::Instream
                | Command::Version
                | Command::Ping
                | Command::Stats
                | Command::VersionCommands
        )
    }
}

/// One framed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    pub style: Style,
}

/// What [`next_request`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// No complete command yet: read more.
    Incomplete,
    /// A command, and how many bytes of the buffer it used.
    Request { request: Request, consumed: usize },
    /// More than [`MAX_COMMAND_LEN`] bytes without a terminator: clamd closes
    /// the connection without a reply.
    TooLong,
}

#[derive(Clone, Copy)]
enum Kind {
    Scan,
    Shutdown,
    Reload,
    Ping,
    ContScan,
    VersionCommands,
    Version,
    End,
    MultiScan,
    Fildes,
    Stats,
    IdSession,
    Instream,
    DetStatsClear,
    DetStats,
    AllMatchScan,
}

/// clamd's command table: name, kind, takes an argument, exists in the old style.
/// The order matters: matching is by prefix, first match wins (clamd's
/// `parse_command`), so `VERSIONCOMMANDS` comes before `VERSION`.
const TABLE: &[(&[u8], Kind, bool, bool)] = &[
    (b"SCAN", Kind::Scan, true, true),
    (b"QUIT", Kind::Shutdown, false, true),
    (b"RELOAD", Kind::Reload, false, true),
    (b"PING", Kind::Ping, false, true),
    (b"CONTSCAN", Kind::ContScan, true, true),
    (b"VERSIONCOMMANDS", Kind::VersionCommands, false, false),
    (b"VERSION", Kind::Version, false, true),
    (b"END", Kind::End, false, false),
    (b"SHUTDOWN", Kind::Shutdown, false, true),
    (b"MULTISCAN", Kind::MultiScan, true, true),
    (b"FILDES", Kind::Fildes, false, true),
    (b"STATS", Kind::Stats, false, false),
    (b"IDSESSION", Kind::IdSession, false, false),
    (b"INSTREAM", Kind::Instream, false, false),
    (b"DETSTATSCLEAR", Kind::DetStatsClear, false, true),
    (b"DETSTATS", Kind::DetStats, false, true),
    (b"ALLMATCHSCAN", Kind::AllMatchScan, true, false),
];

/// Parses the text of one command (prefix and terminator already removed),
/// exactly like clamd: the first table entry that is a prefix of the text
/// decides; a command taking a path needs at least one byte after its name
/// and the path starts one byte later (any separator byte is skipped); a
/// command without argument must end right after its name. Never panics.
pub fn parse_command(text: &[u8], style: Style) -> Command {
    for &(name, kind, need_arg, old_ok) in TABLE {
        let Some(rest) = text.strip_prefix(name) else {
            continue;
        };
        let arg = if need_arg {
            if rest.is_empty() {
                return Command::Unknown;
            }
            rest[1..].to_vec()
        } else {
            if !rest.is_empty() {
                return Command::Unknown;
            }
            Vec::new()
        };
        if style == Style::Old && !old_ok {
            return Command::Unknown;
        }
        return match kind {
            Kind::Scan => Command::Scan(arg),
            Kind::Shutdown => Command::Shutdown,
            Kind::Reload => Command::Reload,
            Kind::Ping => Command::Ping,
            Kind::ContScan => Command::ContScan(arg),
            Kind::VersionCommands => Command::VersionCommands,
            Kind::Version => Command::Version,
            Kind::End => Command::End,
            Kind::MultiScan => Command::MultiScan(arg),
            Kind::Fildes => Command::Fildes,
            Kind::Stats => Command::Stats,
            Kind::IdSession => Command::IdSession,
            Kind::Instream => Command::Instream,
            Kind::DetStatsClear => Command::DetStatsClear,
            Kind::DetStats => Command::DetStats,
            Kind::AllMatchScan => Command::AllMatchScan(arg),
        };
    }
    Command::Unknown
}

/// C string semantics: clamd stops at the first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    match memchr(0, b) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// clamd's `cli_chomp`: removes every trailing CR and LF.
fn chomp(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = b {
        b = rest;
    }
    b
}

/// Finds the first command at the start of `buf` (clamd's `get_cmd`).
///
/// - `z…\0`: the text up to the NUL, as is;
/// - `n…\n`: the text up to the newline, cut at a NUL, trailing CR/LF removed;
/// - anything else is an old-style command: one packet is one command, so the
///   text is everything up to the first newline or, without one, the whole
///   buffer (call this right after the first read, as clamd does).
///
/// Guarantees: `consumed <= buf.len()` and `consumed > 0` for a request;
/// never panics.
pub fn next_request(buf: &[u8]) -> Frame {
    let Some(&first) = buf.first() else {
        return Frame::Incomplete;
    };
    let (style, end_byte) = match first {
        b'z' => (Style::Z, 0u8),
        b'n' => (Style::N, b'\n'),
        _ => (Style::Old, b'\n'),
    };
    let window = &buf[..buf.len().min(MAX_COMMAND_LEN)];
    let (text, consumed) = match (style, memchr(end_byte, window)) {
        (Style::Z, Some(p)) => (&buf[1..p], p + 1),
        (Style::N, Some(p)) => (chomp(c_str(&buf[1..p])), p + 1),
        (Style::Old, Some(p)) => (chomp(c_str(&buf[..p])), p + 1),
        (Style::Old, None) if buf.len() < MAX_COMMAND_LEN => (chomp(c_str(buf)), buf.len()),
        (_, None) if buf.len() >= MAX_COMMAND_LEN => return Frame::TooLong,
        (_, None) => return Frame::Incomplete,
    };
    Frame::Request {
        request: Request {
            command: parse_command(text, style),
            style,
        },
        consumed,
    }
}

/// One reply line before framing: `[path: ]status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub path: Option<Vec<u8>>,
    pub status: Vec<u8>,
}

impl Line {
    /// A line without a path (`PONG`, `UNKNOWN COMMAND`, `… ERROR`).
    pub fn bare(status: impl AsRef<[u8]>) -> Line {
        Line {
            path: None,
            status: status.as_ref().to_vec(),
        }
    }

    /// `path: OK`.
    pub fn ok(path: &[u8]) -> Line {
        Line {
            path: Some(path.to_vec()),
            status: b"OK".to_vec(),
        }
    }

    /// `path: NAME FOUND`; the name is made safe with [`threat_name`].
    pub fn found(path: &[u8], name: &str) -> Line {
        Line {
            path: Some(path.to_vec()),
            status: format!("{} FOUND", threat_name(name)).into_bytes(),
        }
    }

    /// `path: REASON ERROR`, or `REASON ERROR` without a path.
    pub fn error(path: Option<&[u8]>, reason: &str) -> Line {
        Line {
            path: path.map(|p| p.to_vec()),
            status: format!("{} ERROR", one_line(reason)).into_bytes(),
        }
    }

    /// The bytes on the wire: `[ID: ][path: ]status` and the terminator.
    pub fn encode(&self, id: Option<u32>, term: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.status.len() + self.path.as_ref().map_or(0, |p| p.len() + 2) + 16,
        );
        if let Some(id) = id {
            out.extend_from_slice(format!("{id}: ").as_bytes());
        }
        if let Some(p) = &self.path {
            out.extend_from_slice(p);
            out.extend_from_slice(b": ");
        }
        out.extend_from_slice(&self.status);
        out.push(term);
        out
    }
}

/// A threat name as clients parse it: never empty, no spaces, no control
/// characters (each becomes `_`), so `path: NAME FOUND` splits cleanly.
pub fn threat_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s.is_empty() {
        "Unnamed".into()
    } else {
        s
    }
}

/// A reason on one line: no NUL, CR or LF (either could end the reply early).
pub fn one_line(reason: &str) -> String {
    reason
        .chars()
        .map(|c| {
            if matches!(c, '\0' | '\r' | '\n') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// clamd's fixed reply texts.
pub mod text {
    pub const PONG: &str = "PONG";
    pub const UNKNOWN_COMMAND: &str = "UNKNOWN COMMAND";
    pub const RELOADING: &str = "RELOADING";
    pub const COMMAND_UNAVAILABLE: &str = "COMMAND UNAVAILABLE";
    /// Always newline-terminated and without a request id, whatever the style.
    pub const COMMAND_READ_TIMED_OUT: &[u8] = b"COMMAND READ TIMED OUT\n";
    pub const SIZE_LIMIT: &str = "INSTREAM size limit exceeded.";
    pub const INVALID_IN_SESSION: &str = "Command invalid inside IDSESSION.";
    pub const OLD_STYLE_IN_SESSION: &str =
        "Only nCMDS\\n and zCMDS\\0 are accepted inside IDSESSION.";
    pub const ERROR_PROCESSING: &str = "Error processing command.";
    pub const NO_FD: &str = "No file descriptor received.";
    pub const FD_WITHOUT_FILDES: &str = "PROTOCOL ERROR: ancillary data sent without FILDES.";
    pub const NOT_REGULAR: &str = "Not a regular file";
    pub const NOT_SUPPORTED_TYPE: &str = "Not supported file type";
    pub const PATH_CHECK: &str = "File path check failure:";
    pub const ACCESS_DENIED: &str = "Access denied.";
    pub const CANT_OPEN: &str = "Can't open file or directory";
    /// The path of an INSTREAM result.
    pub const STREAM: &[u8] = b"stream";
}

/// The `VERSIONCOMMANDS` reply body: the version, `|`, and the command list.
pub fn version_commands(version: &str) -> String {
    format!("{version}| COMMANDS: {}", COMMAND_NAMES.join(" "))
}

/// Why an INSTREAM was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InstreamError {
    /// A chunk would take the stream past `StreamMaxLength`.
    #[error("INSTREAM: size limit reached (chunk {chunk} bytes, {remaining} left of the limit)")]
    SizeLimit { chunk: u32, remaining: u64 },
}

/// Progress of [`InstreamDecoder::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input used; the rest belongs to whatever follows the stream.
    pub consumed: usize,
    /// The zero-length chunk has been seen: the stream is complete.
    pub done: bool,
}

/// Decodes INSTREAM's chunks (`<u32 big-endian length><data>`…, ended by a
/// zero length) from input that arrives in arbitrary pieces.
///
/// Like clamd, the limit is checked at each chunk header: a chunk larger than
/// what is left of `StreamMaxLength` is an error before any of its data is
/// read, so memory stays bounded by the limit.
#[derive(Debug, Clone)]
pub struct InstreamDecoder {
    header: [u8; CHUNK_HEADER_LEN],
    header_len: usize,
    in_chunk: u32,
    remaining: u64,
    done: bool,
}

impl InstreamDecoder {
    /// A decoder that accepts at most `max_length` bytes of data in total.
    pub fn new(max_length: u64) -> Self {
        InstreamDecoder {
            header: [0; CHUNK_HEADER_LEN],
            header_len: 0,
            in_chunk: 0,
            remaining: max_length,
            done: false,
        }
    }

    /// Appends the data found in `input` to `out` and says how much of
    /// `input` belonged to the stream. After `done`, further calls consume
    /// nothing. Never panics; never grows `out` past the limit.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Fed, InstreamError> {
        let mut i = 0;
        while i < input.len() && !self.done {
            if self.in_chunk == 0 {
                let take = (CHUNK_HEADER_LEN - self.header_len).min(input.len() - i);
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&input[i..i + take]);
                self.header_len += take;
                i += take;
                if self.header_len < CHUNK_HEADER_LEN {
                    break;
                }
                self.header_len = 0;
                let len = u32::from_be_bytes(self.header);
                if len == 0 {
                    self.done = true;
                    break;
                }
                if u64::from(len) > self.remaining {
                    return Err(InstreamError::SizeLimit {
                        chunk: len,
                        remaining: self.remaining,
                    });
                }
                self.remaining -= u64::from(len);
                self.in_chunk = len;
                continue;
            }
            let take = (self.in_chunk as usize).min(input.len() - i);
            out.extend_from_slice(&input[i..i + take]);
            self.in_chunk -= take as u32;
            i += take;
        }
        Ok(Fed {
            consumed: i,
            done: self.done,
        })
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Encodes `data` as INSTREAM chunks of at most `chunk` bytes plus the
/// terminator (for clients and tests).
pub fn encode_instream(data: &[u8], chunk: usize) -> Vec<u8> {
    let chunk = chunk.max(1);
    let mut out = Vec::with_capacity(data.len() + 8 + data.len() / chunk * 4);
    for c in data.chunks(chunk) {
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

/// What `STATS` shows, taken from the scan pool at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    pub live: usize,
    pub idle: usize,
    pub max: usize,
    pub idle_timeout_secs: u64,
    /// Seconds each queued job has been waiting.
    pub queue_waits: Vec<f64>,
    /// One line per worker thread and per STATS request: command (`IDLE`
    /// for idle workers), seconds in that state, file being scanned.
    pub tasks: Vec<(String, f64, String)>,
    /// Memory of the loaded signatures (shown as clamd's pools).
    pub pools_used: u64,
    pub pools_total: u64,
}

/// The `STATS` reply in clamd's format (lines end with `\n`, the final `END`
/// with the request's terminator).
pub fn format_stats(s: &StatsSnapshot, term: u8) -> Vec<u8> {
    let mut o = String::new();
    o.push_str("POOLS: 1\n\nSTATE: VALID PRIMARY\n");
    o.push_str(&format!(
        "THREADS: live {}  idle {} max {} idle-timeout {}\n",
        s.live, s.idle, s.max, s.idle_timeout_secs
    ));
    o.push_str(&format!("QUEUE: {} items", s.queue_waits.len()));
    if !s.queue_waits.is_empty() {
        let min = s.queue_waits.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = s.queue_waits.iter().cloned().fold(0.0, f64::max);
        let avg = s.queue_waits.iter().sum::<f64>() / s.queue_waits.len() as f64;
        o.push_str(&format!(
            " min_wait: {min:.6} max_wait: {max:.6} avg_wait: {avg:.6}"
        ));
    }
    o.push('\n');
    for (cmd, secs, file) in &s.tasks {
        o.push_str(&format!("\t{cmd} {secs:.6} {}\n", one_line(file)));
    }
    o.push('\n');
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    o.push_str(&format!(
        "MEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A pools 1 pools_used {:.3}M pools_total {:.3}M\n",
        mb(s.pools_used),
        mb(s.pools_total)
    ));
    o.push_str("END");
    let mut v = o.into_bytes();
    v.push(term);
    v
}

/// `Mon Nov 23 05:26:37 2026`: C's `ctime` without the newline, in UTC.
pub fn ctime_utc(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86400;
    let sod = unix_secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        y
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(buf: &[u8]) -> (Command, Style, usize) {
        match next_request(buf) {
            Frame::Request { request, consumed } => (request.command, request.style, consumed),
            f => panic!("{buf:?}: {f:?}"),
        }
    }

    /// Every command in every form clamd 1.4.6 accepts or refuses (recorded
    /// from a real clamd: see the module docs).
    #[test]
    fn command_table_matches_clamd() {
        let cases: &[(&[u8], Command, Style)] = &[
            (b"PING", Command::Ping, Style::Old),
            (b"PING\n", Command::Ping, Style::Old),
            (b"PING\r\n", Command::Ping, Style::Old),
            (b"nPING\n", Command::Ping, Style::N),
            (b"nPING\r\n", Command::Ping, Style::N),
            (b"nPING\0\n", Command::Ping, Style::N),
            (b"zPING\0", Command::Ping, Style::Z),
            (b"nPING x\n", Command::Unknown, Style::N),
            (b"nping\n", Command::Unknown, Style::N),
            (b"nPINGPONG\n", Command::Unknown, Style::N),
            (b"n\n", Command::Unknown, Style::N),
            (b"z\0", Command::Unknown, Style::Z),
            (b"FOO", Command::Unknown, Style::Old),
            (b"nEND\n", Command::End, Style::N),
            (b"END", Command::Unknown, Style::Old),
            (b"nSCAN\n", Command::Unknown, Style::N),
            (b"nSCAN /a b\n", Command::Scan(b"/a b".to_vec()), Style::N),
            (b"nSCAN\t/x\n", Command::Scan(b"/x".to_vec()), Style::N),
            (b"nSCANX/x\n", Command::Scan(b"/x".to_vec()), Style::N),
            (b"nSCAN  /x\n", Command::Scan(b" /x".to_vec()), Style::N),
            (b"nSCAN \n", Command::Scan(Vec::new()), Style::N),
            (b"SCAN /x", Command::Scan(b"/x".to_vec()), Style::Old),
            (
                b"zCONTSCAN /d\0",
                Command::ContScan(b"/d".to_vec()),
                Style::Z,
            ),
            (
                b"MULTISCAN /d",
                Command::MultiScan(b"/d".to_vec()),
                Style::Old,
            ),
            (
                b"nALLMATCHSCAN /d\n",
                Command::AllMatchScan(b"/d".to_vec()),
                Style::N,
            ),
            (b"ALLMATCHSCAN /d", Command::Unknown, Style::Old),
            (b"zINSTREAM\0", Command::Instream, Style::Z),
            (b"INSTREAM\n", Command::Unknown, Style::Old),
            (b"nVERSION\n", Command::Version, Style::N),
            (b"VERSION", Command::Version, Style::Old),
            (b"nVERSION x\n", Command::Unknown, Style::N),
            (b"nVERSIONCOMMANDS\n", Command::VersionCommands, Style::N),
            (b"VERSIONCOMMANDS", Command::Unknown, Style::Old),
            (b"zSTATS\0", Command::Stats, Style::Z),
            (b"STATS", Command::Unknown, Style::Old),
            (b"nRELOAD\n", Command::Reload, Style::N),
            (b"nSHUTDOWN\n", Command::Shutdown, Style::N),
            (b"QUIT", Command::Shutdown, Style::Old),
            (b"zIDSESSION\0", Command::IdSession, Style::Z),
            (b"IDSESSION", Command::Unknown, Style::Old),
            (b"nFILDES\n", Command::Fildes, Style::N),
            (b"FILDES", Command::Fildes, Style::Old),
            (b"nDETSTATS\n", Command::DetStats, Style::N),
            (b"nDETSTATSCLEAR\n", Command::DetStatsClear, Style::N),
        ];
        for (buf, cmd, style) in cases {
            let (c, s, n) = req(buf);
            assert_eq!((&c, s), (cmd, *style), "{:?}", String::from_utf8_lossy(buf));
            assert_eq!(n, buf.len(), "{:?}", String::from_utf8_lossy(buf));
        }
    }

    #[test]
    fn framing_keeps_what_follows_and_waits_for_terminators() {
        assert_eq!(next_request(b""), Frame::Incomplete);
        assert_eq!(next_request(b"nPI"), Frame::Incomplete);
        assert_eq!(next_request(b"zPING"), Frame::Incomplete);
        assert_eq!(next_request(b"zPING\n"), Frame::Incomplete);
        let (c, _, n) = req(b"zPING\0zVERSION\0");
        assert_eq!((c, n), (Command::Ping, 6));
        let (c, _, n) = req(b"nPING\nzVERSION\0");
        assert_eq!((c, n), (Command::Ping, 6));
        // The z form keeps a newline as part of the text (clamd does not chomp it).
        assert_eq!(req(b"zPING\n\0").0, Command::Unknown);
        // Old style: the whole packet up to the first newline.
        let (c, s, n) = req(b"PING\nPING\n");
        assert_eq!((c, s, n), (Command::Ping, Style::Old, 5));
    }

    #[test]
    fn too_long_commands_are_refused_but_long_paths_fit() {
        let mut long = b"n".to_vec();
        long.extend(std::iter::repeat_n(b'A', 5000));
        assert_eq!(next_request(&long), Frame::TooLong);
        long.push(b'\n');
        assert_eq!(next_request(&long), Frame::TooLong);
        let mut z = b"z".to_vec();
        z.extend(std::iter::repeat_n(b'A', MAX_COMMAND_LEN));
        assert_eq!(next_request(&z), Frame::TooLong);
        let mut ok = b"nSCAN /".to_vec();
        ok.extend(std::iter::repeat_n(b'A', 4000));
        ok.push(b'\n');
        assert!(matches!(req(&ok).0, Command::Scan(p) if p.len() == 4001));
        // Just under the limit: incomplete, not refused.
        let mut w = b"n".to_vec();
        w.extend(std::iter::repeat_n(b'A', MAX_COMMAND_LEN - 2));
        assert_eq!(next_request(&w), Frame::Incomplete);
    }

    #[test]
    fn replies_are_byte_exact() {
        assert_eq!(Line::bare(text::PONG).encode(None, 0), b"PONG\0");
        assert_eq!(Line::bare(text::PONG).encode(Some(1), b'\n'), b"1: PONG\n");
        assert_eq!(
            Line::found(b"stream", "Win.Test.EICAR_HDB-1").encode(None, 0),
            b"stream: Win.Test.EICAR_HDB-1 FOUND\0"
        );
        assert_eq!(
            Line::found(b"/x", "Bad name\twith space").encode(Some(3), b'\n'),
            b"3: /x: Bad_name_with_space FOUND\n"
        );
        assert_eq!(Line::ok(b"/tmp/d").encode(None, b'\n'), b"/tmp/d: OK\n");
        assert_eq!(
            Line::error(None, text::SIZE_LIMIT).encode(None, 0),
            b"INSTREAM size limit exceeded. ERROR\0"
        );
        assert_eq!(
            Line::error(
                Some(b"/nonexistent/x"),
                &format!("{} No such file or directory.", text::PATH_CHECK)
            )
            .encode(None, b'\n'),
            b"/nonexistent/x: File path check failure: No such file or directory. ERROR\n"
        );
        assert_eq!(
            Line::error(Some(b"/x"), "line\nbreak\0").encode(None, b'\n'),
            b"/x: line break  ERROR\n"
        );
        assert_eq!(
            version_commands("ClamAV 1.4.6"),
            "ClamAV 1.4.6| COMMANDS: SCAN QUIT RELOAD PING CONTSCAN VERSIONCOMMANDS VERSION END SHUTDOWN MULTISCAN FILDES STATS IDSESSION INSTREAM DETSTATSCLEAR DETSTATS ALLMATCHSCAN"
        );
        assert_eq!(threat_name(""), "Unnamed");
    }

    #[test]
    fn stats_have_clamds_shape() {
        let s = StatsSnapshot {
            live: 2,
            idle: 1,
            max: 10,
            idle_timeout_secs: 30,
            queue_waits: vec![],
            tasks: vec![
                ("IDLE".into(), 1.5, String::new()),
                ("STATS".into(), 0.000003, String::new()),
            ],
            pools_used: 6 * 1024 * 1024,
            pools_total: 6 * 1024 * 1024,
        };
        let out = String::from_utf8(format_stats(&s, 0)).unwrap();
        assert_eq!(
            out,
            "POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live 2  idle 1 max 10 idle-timeout 30\nQUEUE: 0 items\n\tIDLE 1.500000 \n\tSTATS 0.000003 \n\nMEMSTATS: heap N/A mmap N/A used N/A free N/A releasable N/A pools 1 pools_used 6.000M pools_total 6.000M\nEND\0"
        );
        let q = StatsSnapshot {
            queue_waits: vec![0.5, 1.5],
            ..s
        };
        let out = String::from_utf8(format_stats(&q, b'\n')).unwrap();
        assert!(
            out.contains(
                "QUEUE: 2 items min_wait: 0.500000 max_wait: 1.500000 avg_wait: 1.000000\n"
            ),
            "{out}"
        );
        assert!(out.ends_with("END\n"));
    }

    #[test]
    fn instream_chunks_split_anywhere_decode_the_same() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let wire = encode_instream(&data, 97);
        let mut trailing = wire.clone();
        trailing.extend_from_slice(b"zPING\0");
        // Every split point, including inside headers.
        for split in 0..=trailing.len() {
            let mut d = InstreamDecoder::new(10_000);
            let mut out = Vec::new();
            let a = d.feed(&trailing[..split], &mut out).unwrap();
            let mut used = a.consumed;
            if !a.done {
                assert_eq!(a.consumed, split);
                let b = d.feed(&trailing[split..], &mut out).unwrap();
                assert!(b.done);
                used += b.consumed;
            }
            assert_eq!(out, data, "split {split}");
            assert_eq!(&trailing[used..], b"zPING\0", "split {split}");
        }
        // Byte by byte.
        let mut d = InstreamDecoder::new(10_000);
        let mut out = Vec::new();
        for (i, b) in wire.iter().enumerate() {
            let f = d.feed(std::slice::from_ref(b), &mut out).unwrap();
            assert_eq!(f.consumed, 1);
            assert_eq!(f.done, i == wire.len() - 1);
        }
        assert_eq!(out, data);
        assert_eq!(d.feed(b"more", &mut out).unwrap().consumed, 0);
    }

    #[test]
    fn instream_limit_is_checked_at_each_header() {
        // Zero-length stream: done at once, empty data.
        let mut d = InstreamDecoder::new(10);
        let mut out = Vec::new();
        assert_eq!(
            d.feed(&[0, 0, 0, 0], &mut out).unwrap(),
            Fed {
                consumed: 4,
                done: true
            }
        );
        assert!(out.is_empty());
        // Exactly the limit is fine, one byte more is not.
        let mut d = InstreamDecoder::new(10);
        assert!(
            d.feed(&encode_instream(&[1; 10], 3), &mut out)
                .unwrap()
                .done
        );
        let mut d = InstreamDecoder::new(10);
        let mut out = Vec::new();
        let e = d.feed(&encode_instream(&[1; 11], 4), &mut out).unwrap_err();
        assert_eq!(
            e,
            InstreamError::SizeLimit {
                chunk: 3,
                remaining: 2
            }
        );
        assert_eq!(out.len(), 8, "data before the refused chunk only");
        // A huge declared chunk is refused before any data arrives.
        let mut d = InstreamDecoder::new(1 << 20);
        let e = d.feed(&[0xff, 0xff, 0xff, 0xff, b'x'], &mut Vec::new());
        assert!(matches!(
            e,
            Err(InstreamError::SizeLimit {
                chunk: u32::MAX,
                ..
            })
        ));
    }

    #[test]
    fn ctime_matches_c() {
        assert_eq!(ctime_utc(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime_utc(1_795_411_597), "Mon Nov 23 05:26:37 2026");
        assert_eq!(ctime_utc(951_782_400), "Tue Feb 29 00:00:00 2000");
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..600 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly protocol-ish bytes.
                    {
                        let a = b"znPINGSCAN \0\n\r/ABCDEFILMOQRSTUVWX";
                        a[(x % a.len() as u64) as usize]
                    }
                })
                .collect();
            if let Frame::Request { consumed, .. } = next_request(&buf) {
                assert!(consumed > 0 && consumed <= buf.len());
            }
            let mut d = InstreamDecoder::new(1000);
            let mut out = Vec::new();
            if let Ok(f) = d.feed(&buf, &mut out) {
                assert!(f.consumed <= buf.len() && out.len() <= 1000);
            }
        }
    }
}
