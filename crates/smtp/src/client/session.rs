//! One delivery attempt over a connected stream.

use super::{
    Capabilities, ClientOptions, DataEncoder, Failure, NextHop, OutboundEnvelope, OutboundRcpt,
    Outcome, Protocol, RcptResult, ReplyParser, Stage, TransportError, DATA_CHUNK, PIPELINE_RCPTS,
    QUIT_TIMEOUT,
};
use crate::proto::command::Ret;
use crate::proto::Reply;
use std::fmt::Write as _;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

/// Delivers `message` to the recipients of `env` through `hop`: connects
/// (TCP, or a Unix socket for `lmtp+unix:`), then runs [`deliver_on`].
///
/// Returns one [`RcptResult`] per recipient of `env`, in order, or a
/// [`TransportError`] when no recipient could be decided (see the
/// [module](super) documentation for the exact meaning). With no recipients
/// it returns an empty list without connecting; if every recipient fails a
/// local check (an address with control characters or stray angle
/// brackets) it does not connect either. Never panics on anything the next
/// hop sends.
pub async fn deliver(
    hop: &NextHop,
    opts: &ClientOptions,
    env: &OutboundEnvelope,
    message: &[u8],
) -> Result<Vec<RcptResult>, TransportError> {
    let st = State::new(env);
    if st.all_decided() {
        return Ok(st.finish());
    }
    let after = opts.connect_timeout;
    let connect_err = |source| TransportError::Connect {
        hop: hop.to_string(),
        source,
    };
    let timed_out = || TransportError::ConnectTimeout {
        hop: hop.to_string(),
        after,
    };
    match hop {
        NextHop::Smtp { host, port } | NextHop::Lmtp { host, port } => {
            let stream = match timeout(
                after,
                tokio::net::TcpStream::connect((host.as_str(), *port)),
            )
            .await
            {
                Err(_) => return st.give_up(timed_out()),
                Ok(Err(e)) => return st.give_up(connect_err(e)),
                Ok(Ok(s)) => s,
            };
            // We batch our writes ourselves; Nagle would only delay them.
            let _ = stream.set_nodelay(true);
            run(stream, hop.protocol(), opts, env, message, st).await
        }
        #[cfg(unix)]
        NextHop::LmtpUnix { path } => {
            let stream = match timeout(after, tokio::net::UnixStream::connect(path)).await {
                Err(_) => return st.give_up(timed_out()),
                Ok(Err(e)) => return st.give_up(connect_err(e)),
                Ok(Ok(s)) => s,
            };
            run(stream, Protocol::Lmtp, opts, env, message, st).await
        }
        #[cfg(not(unix))]
        NextHop::LmtpUnix { .. } => st.give_up(connect_err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Unix sockets are not available on this platform",
        ))),
    }
}

/// Like [`deliver`], over a stream that is already connected (and whose
/// greeting has not been read yet): a test's in-memory stream, or later a
/// TLS stream. `protocol` chooses EHLO or LHLO and the final-reply rule.
pub async fn deliver_on<S>(
    stream: S,
    protocol: Protocol,
    opts: &ClientOptions,
    env: &OutboundEnvelope,
    message: &[u8],
) -> Result<Vec<RcptResult>, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let st = State::new(env);
    if st.all_decided() {
        return Ok(st.finish());
    }
    run(stream, protocol, opts, env, message, st).await
}

async fn run<S>(
    stream: S,
    protocol: Protocol,
    opts: &ClientOptions,
    env: &OutboundEnvelope,
    message: &[u8],
    mut st: State<'_>,
) -> Result<Vec<RcptResult>, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Conn::new(stream, opts.command_timeout);
    match session(&mut conn, protocol, opts, env, message, &mut st).await {
        Ok(true) => conn.quit().await,
        Ok(false) => {}
        Err(Abort::Shutdown { stage, reply }) => {
            st.fill(|| {
                Outcome::Temporary(Failure::Remote {
                    stage,
                    reply: reply.clone(),
                })
            });
        }
        Err(Abort::Transport(e)) => return st.give_up(e),
    }
    Ok(st.finish())
}

/// Why a session stopped early.
enum Abort {
    Transport(TransportError),
    /// A `421`: the next hop is closing the connection.
    Shutdown {
        stage: Stage,
        reply: Reply,
    },
}

impl From<TransportError> for Abort {
    fn from(e: TransportError) -> Abort {
        Abort::Transport(e)
    }
}

/// The per-recipient results as they become known.
struct State<'a> {
    env: &'a OutboundEnvelope,
    results: Vec<Option<Outcome>>,
    dsn_passed: bool,
    needs_smtputf8: bool,
}

impl<'a> State<'a> {
    /// Runs the checks that need no connection.
    fn new(env: &'a OutboundEnvelope) -> State<'a> {
        let mut st = State {
            env,
            results: vec![None; env.rcpts.len()],
            dsn_passed: false,
            needs_smtputf8: env.smtputf8
                || !env.mail_from.is_ascii()
                || env.rcpts.iter().any(|r| !r.address.is_ascii()),
        };
        if !address_ok(&env.mail_from) {
            st.fill(|| {
                local(
                    true,
                    "5.1.7",
                    "the sender address holds control characters or angle brackets; not sent",
                )
            });
        }
        for (i, r) in env.rcpts.iter().enumerate() {
            if st.results[i].is_none() && (r.address.is_empty() || !address_ok(&r.address)) {
                st.results[i] = Some(local(
                    true,
                    "5.1.3",
                    "the recipient address is empty or holds control characters or angle brackets; not sent",
                ));
            }
        }
        st
    }

    fn set(&mut self, i: usize, outcome: Outcome) {
        self.results[i] = Some(outcome);
    }

    fn fill(&mut self, mut outcome: impl FnMut() -> Outcome) {
        for r in self.results.iter_mut().filter(|r| r.is_none()) {
            *r = Some(outcome());
        }
    }

    fn fail_all(&mut self, stage: Stage, reply: &Reply) {
        self.fill(|| failed(stage, reply));
    }

    fn undecided(&self) -> Vec<usize> {
        (0..self.results.len())
            .filter(|&i| self.results[i].is_none())
            .collect()
    }

    fn all_decided(&self) -> bool {
        self.results.iter().all(Option::is_some)
    }

    /// The session failed: an error if nothing was decided, else the decided
    /// results and the error as a temporary failure for the rest.
    fn give_up(mut self, e: TransportError) -> Result<Vec<RcptResult>, TransportError> {
        if self.results.iter().all(Option::is_none) {
            return Err(e);
        }
        let text = e.to_string();
        let status = e.status();
        self.fill(|| {
            Outcome::Temporary(Failure::Local {
                status,
                text: text.clone(),
            })
        });
        Ok(self.finish())
    }

    fn finish(self) -> Vec<RcptResult> {
        let dsn_passed = self.dsn_passed;
        self.env
            .rcpts
            .iter()
            .zip(self.results)
            .map(|(r, outcome)| RcptResult {
                address: r.address.clone(),
                // Every path decides every recipient; this is only a guard.
                outcome: outcome.unwrap_or_else(|| {
                    local(false, "4.3.0", "internal error: the session left no result")
                }),
                dsn_passed,
            })
            .collect()
    }
}

fn local(permanent: bool, status: &'static str, text: &str) -> Outcome {
    let f = Failure::Local {
        status,
        text: text.to_string(),
    };
    if permanent {
        Outcome::Permanent(f)
    } else {
        Outcome::Temporary(f)
    }
}

/// A negative (or unexpected) reply as a result: 5xx permanent, else temporary.
fn failed(stage: Stage, reply: &Reply) -> Outcome {
    let f = Failure::Remote {
        stage,
        reply: reply.clone(),
    };
    if reply.code >= 500 {
        Outcome::Permanent(f)
    } else {
        Outcome::Temporary(f)
    }
}

fn is_positive(reply: &Reply) -> bool {
    (200..300).contains(&reply.code)
}

/// Nothing that could end the command line (control characters) or the path
/// (`<`, `>` outside a quoted local part) and so smuggle in parameters.
fn address_ok(a: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for c in a.chars() {
        if c.is_control() {
            return false;
        }
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && (c == '<' || c == '>') {
            return false;
        }
    }
    !quoted
}

const NO_SMTPUTF8: &str =
    "the message needs SMTPUTF8 (RFC 6531) and the next hop does not offer it; not downgraded";
const NO_8BITMIME: &str = "the message has an 8-bit body and the next hop does not offer \
                           8BITMIME (RFC 6152); not downgraded";

/// How a transaction ended, for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Say QUIT and close.
    Quit,
    /// Close without QUIT (the next hop is gone or misbehaving).
    NoQuit,
    /// The transaction completed cleanly: the connection may carry another.
    Reusable,
}

/// The SMTP dialogue up to the final replies. `Ok(true)`: end with QUIT.
async fn session<S>(
    conn: &mut Conn<S>,
    protocol: Protocol,
    opts: &ClientOptions,
    env: &OutboundEnvelope,
    message: &[u8],
    st: &mut State<'_>,
) -> Result<bool, Abort>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(caps) = open(conn, protocol, opts, st).await? else {
        return Ok(true);
    };
    let end = transaction(conn, protocol, &caps, opts, env, message, st).await?;
    Ok(end != End::NoQuit)
}

/// Greeting and EHLO/LHLO: the next hop's capabilities, or `None` when it
/// refused us (every recipient then has its result).
async fn open<S>(
    conn: &mut Conn<S>,
    protocol: Protocol,
    opts: &ClientOptions,
    st: &mut State<'_>,
) -> Result<Option<Capabilities>, Abort>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ct = opts.command_timeout;
    let greeting = conn.expect(Stage::Greeting, ct).await?;
    if !is_positive(&greeting) {
        st.fail_all(Stage::Greeting, &greeting);
        return Ok(None);
    }

    let name = helo_name(&opts.helo_name);
    let caps = match protocol {
        Protocol::Lmtp => {
            conn.queue(&format!("LHLO {name}"));
            conn.flush(Stage::Lhlo).await?;
            let r = conn.expect(Stage::Lhlo, ct).await?;
            if !is_positive(&r) {
                st.fail_all(Stage::Lhlo, &r);
                return Ok(None);
            }
            Capabilities::parse(&r)
        }
        Protocol::Smtp => {
            conn.queue(&format!("EHLO {name}"));
            conn.flush(Stage::Ehlo).await?;
            let r = conn.expect(Stage::Ehlo, ct).await?;
            if is_positive(&r) {
                Capabilities::parse(&r)
            } else if r.code >= 500 {
                // Not an ESMTP server (RFC 5321 §3.2): plain SMTP, no extensions.
                conn.queue(&format!("HELO {name}"));
                conn.flush(Stage::Helo).await?;
                let r = conn.expect(Stage::Helo, ct).await?;
                if !is_positive(&r) {
                    st.fail_all(Stage::Helo, &r);
                    return Ok(None);
                }
                Capabilities::default()
            } else {
                st.fail_all(Stage::Ehlo, &r);
                return Ok(None);
            }
        }
    };
    Ok(Some(caps))
}

/// One transaction on an open connection (MAIL, RCPT, DATA, the message,
/// the final replies).
async fn transaction<S>(
    conn: &mut Conn<S>,
    protocol: Protocol,
    caps: &Capabilities,
    opts: &ClientOptions,
    env: &OutboundEnvelope,
    message: &[u8],
    st: &mut State<'_>,
) -> Result<End, Abort>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ct = opts.command_timeout;
    // What the message needs and the next hop lacks fails permanently: no
    // silent downgrade (RFC 6152 §3, RFC 6531 §3.2).
    let size = env.size.unwrap_or(message.len() as u64);
    let refusal = if st.needs_smtputf8 && !caps.smtputf8 {
        Some(("5.6.7", NO_SMTPUTF8.to_string()))
    } else if env.body_8bit && !caps.eightbitmime {
        Some(("5.6.3", NO_8BITMIME.to_string()))
    } else {
        caps.size_limit()
            .filter(|&limit| size > limit)
            .map(|limit| {
                (
                    "5.3.4",
                    format!(
                        "the message ({size} bytes) is larger than the next hop's limit \
                     ({limit} bytes)"
                    ),
                )
            })
    };
    if let Some((status, text)) = refusal {
        st.fill(|| local(true, status, &text));
        return Ok(End::Quit);
    }
    st.dsn_passed = caps.dsn;

    let sendable = st.undecided();
    let mail = mail_command(env, caps, size, st.needs_smtputf8);
    let rcpts: Vec<(usize, String)> = sendable
        .iter()
        .map(|&i| (i, rcpt_command(&env.rcpts[i], caps)))
        .collect();
    let mut accepted = Vec::with_capacity(sendable.len());

    if caps.pipelining {
        // RFC 2920: MAIL, the RCPTs and DATA in one write, then the replies.
        // Past PIPELINE_RCPTS recipients the RCPTs go in groups of that many,
        // each group's replies read before the next is sent, so neither side
        // can block writing while the other does too.
        let groups: Vec<&[(usize, String)]> = rcpts.chunks(PIPELINE_RCPTS).collect();
        let mut mail_ok = true;
        let mut data_reply = None;
        for (g, group) in groups.iter().enumerate() {
            let last = g + 1 == groups.len();
            if g == 0 {
                conn.queue(&mail);
            }
            for (_, cmd) in group.iter() {
                conn.queue(cmd);
            }
            if last {
                conn.queue("DATA");
            }
            conn.flush(if g == 0 {
                Stage::MailFrom
            } else {
                Stage::RcptTo
            })
            .await?;
            if g == 0 {
                let mail_reply = conn.expect(Stage::MailFrom, ct).await?;
                mail_ok = is_positive(&mail_reply);
                if !mail_ok {
                    st.fail_all(Stage::MailFrom, &mail_reply);
                }
            }
            for &(i, _) in group.iter() {
                let r = conn.expect(Stage::RcptTo, ct).await?;
                if !mail_ok {
                    continue;
                } else if is_positive(&r) {
                    accepted.push(i);
                } else {
                    st.set(i, failed(Stage::RcptTo, &r));
                }
            }
            if last {
                data_reply = Some(conn.expect(Stage::Data, ct).await?);
            } else if !mail_ok {
                break;
            }
        }
        let Some(data_reply) = data_reply else {
            // MAIL refused before the last group: DATA was never sent.
            return Ok(End::Quit);
        };
        if accepted.is_empty() {
            if data_reply.code == 354 {
                // A server that says 354 with no recipient gets an empty
                // message. Every result is known: no long wait for its reply
                // (and LMTP owes none, with no recipient accepted).
                conn.queue(".");
                conn.flush(Stage::Message).await?;
                if protocol == Protocol::Smtp {
                    conn.expect(Stage::EndOfData, ct.min(QUIT_TIMEOUT)).await?;
                }
            }
            return Ok(End::Quit);
        }
        if data_reply.code != 354 {
            for &i in &accepted {
                st.set(i, failed(Stage::Data, &data_reply));
            }
            return Ok(End::Quit);
        }
    } else {
        conn.queue(&mail);
        conn.flush(Stage::MailFrom).await?;
        let mail_reply = conn.expect(Stage::MailFrom, ct).await?;
        if !is_positive(&mail_reply) {
            st.fail_all(Stage::MailFrom, &mail_reply);
            return Ok(End::Quit);
        }
        for (i, cmd) in &rcpts {
            let i = *i;
            conn.queue(cmd);
            conn.flush(Stage::RcptTo).await?;
            let r = conn.expect(Stage::RcptTo, ct).await?;
            if is_positive(&r) {
                accepted.push(i);
            } else {
                st.set(i, failed(Stage::RcptTo, &r));
            }
        }
        if accepted.is_empty() {
            return Ok(End::Quit);
        }
        conn.queue("DATA");
        conn.flush(Stage::Data).await?;
        let r = conn.expect(Stage::Data, ct).await?;
        if r.code != 354 {
            for &i in &accepted {
                st.set(i, failed(Stage::Data, &r));
            }
            return Ok(End::Quit);
        }
    }

    if let Err(e) = conn.send_message(message).await {
        // The next hop may have refused the message and closed while we were
        // still sending (a size limit, say): take its reply if it came.
        match conn.read_reply(Stage::Message, ct.min(QUIT_TIMEOUT)).await {
            Ok(r) if r.code >= 400 => {
                for &i in &accepted {
                    st.set(i, failed(Stage::Message, &r));
                }
                return Ok(End::NoQuit);
            }
            _ => return Err(e.into()),
        }
    }

    let final_outcome = |r: &Reply| {
        if is_positive(r) {
            Outcome::Delivered(r.clone())
        } else {
            failed(Stage::EndOfData, r)
        }
    };
    match protocol {
        Protocol::Smtp => {
            let r = conn.expect(Stage::EndOfData, opts.data_timeout).await?;
            for &i in &accepted {
                st.set(i, final_outcome(&r));
            }
        }
        Protocol::Lmtp => {
            // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
            for &i in &accepted {
                let r = conn.expect(Stage::EndOfData, opts.data_timeout).await?;
                st.set(i, final_outcome(&r));
            }
        }
    }
    Ok(End::Reusable)
}

/// Our EHLO name without anything that could break the command line.
fn helo_name(name: &str) -> String {
    let n: String = name
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect();
    if n.is_empty() {
        "localhost".to_string()
    } else {
        n
    }
}

fn mail_command(env: &OutboundEnvelope, caps: &Capabilities, size: u64, utf8: bool) -> String {
    let mut s = format!("MAIL FROM:<{}>", env.mail_from);
    if caps.size.is_some() {
        let _ = write!(s, " SIZE={size}");
    }
    if env.body_8bit && caps.eightbitmime {
        s.push_str(" BODY=8BITMIME");
    }
    if utf8 && caps.smtputf8 {
        s.push_str(" SMTPUTF8");
    }
    if caps.dsn {
        match env.ret {
            Some(Ret::Full) => s.push_str(" RET=FULL"),
            Some(Ret::Headers) => s.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(id) = env.envid.as_deref().filter(|id| !id.is_empty()) {
            s.push_str(" ENVID=");
            push_xtext(&mut s, id);
        }
    }
    s
}

fn rcpt_command(r: &OutboundRcpt, caps: &Capabilities) -> String {
    let mut s = format!("RCPT TO:<{}>", r.address);
    if caps.dsn {
        if let Some(n) = r.notify.as_deref().and_then(notify_param) {
            s.push_str(" NOTIFY=");
            s.push_str(&n);
        }
        if let Some(o) = r.orcpt.as_deref() {
            let (kind, addr) = o.split_once(';').unwrap_or(("rfc822", o));
            let kind = kind.trim();
            if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                let _ = write!(s, " ORCPT={kind};");
                push_xtext(&mut s, addr);
            }
        }
    }
    s
}

/// `NEVER` or a list of `SUCCESS`, `FAILURE`, `DELAY` (RFC 3461 §4.1), in
/// upper case; `None` for anything else.
fn notify_param(n: &str) -> Option<String> {
    let n = n.trim().to_ascii_uppercase();
    if n == "NEVER" {
        return Some(n);
    }
    let ok = !n.is_empty()
        && n.split(',')
            .all(|w| matches!(w, "SUCCESS" | "FAILURE" | "DELAY"));
    ok.then_some(n)
}

/// Appends `v` as xtext (RFC 3461 §4): valid xtext is kept as is; any byte
/// that may not stand for itself (outside `!`..`~`, `=`, a `+` not starting
/// `+HH`) is encoded, so the parameter can never break the command.
fn push_xtext(s: &mut String, v: &str) {
    let b = v.as_bytes();
    let upper_hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
    for (i, &c) in b.iter().enumerate() {
        let keep = match c {
            b'+' => b.len() > i + 2 && upper_hex(b[i + 1]) && upper_hex(b[i + 2]),
            b'=' => false,
            0x21..=0x7e => true,
            _ => false,
        };
        if keep {
            s.push(c as char);
        } else {
            let _ = write!(s, "+{c:02X}");
        }
    }
}

/// The connection: a stream, our write batch and the read buffer.
struct Conn<S> {
    stream: S,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    parser: ReplyParser,
    command_timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S, command_timeout: Duration) -> Conn<S> {
        Conn {
            stream,
            rbuf: Vec::with_capacity(4096),
            wbuf: Vec::with_capacity(4096),
            parser: ReplyParser::new(),
            command_timeout,
        }
    }

    /// Adds a command line to the next write.
    fn queue(&mut self, line: &str) {
        self.wbuf.extend_from_slice(line.as_bytes());
        self.wbuf.extend_from_slice(b"\r\n");
    }

    /// Writes the batch in one go.
    async fn flush(&mut self, stage: Stage) -> Result<(), TransportError> {
        let after = self.command_timeout;
        let Conn { stream, wbuf, .. } = self;
        let res = timeout(after, async {
            stream.write_all(wbuf).await?;
            stream.flush().await
        })
        .await;
        self.wbuf.clear();
        match res {
            Err(_) => Err(TransportError::Timeout { stage, after }),
            Ok(Err(e)) => Err(io_error(stage, e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The message after 354, in [`DATA_CHUNK`] writes, with the final dot.
    async fn send_message(&mut self, message: &[u8]) -> Result<(), TransportError> {
        let mut enc = DataEncoder::new(message);
        loop {
            let done = enc.fill(&mut self.wbuf, DATA_CHUNK);
            self.flush(Stage::Message).await?;
            if done {
                return Ok(());
            }
        }
    }

    /// The next reply, within `after`.
    async fn read_reply(&mut self, stage: Stage, after: Duration) -> Result<Reply, TransportError> {
        let deadline = Instant::now() + after;
        let mut chunk = [0u8; 4096];
        loop {
            if !self.rbuf.is_empty() {
                let (reply, used) = self
                    .parser
                    .feed(&self.rbuf)
                    .map_err(|error| TransportError::Protocol { stage, error })?;
                self.rbuf.drain(..used);
                if let Some(r) = reply {
                    return Ok(r);
                }
            }
            match timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(TransportError::Timeout { stage, after }),
                Ok(Err(e)) => return Err(io_error(stage, e)),
                Ok(Ok(0)) => return Err(TransportError::Closed { stage }),
                Ok(Ok(n)) => self.rbuf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// [`Conn::read_reply`], with a `421` turned into [`Abort::Shutdown`].
    async fn expect(&mut self, stage: Stage, after: Duration) -> Result<Reply, Abort> {
        let r = self.read_reply(stage, after).await?;
        if r.code == 421 {
            return Err(Abort::Shutdown { stage, reply: r });
        }
        Ok(r)
    }

    /// QUIT, its reply, and closing our side; every error ignored.
    async fn quit(&mut self) {
        let after = self.command_timeout.min(QUIT_TIMEOUT);
        self.command_timeout = after;
        self.queue("QUIT");
        if self.flush(Stage::Quit).await.is_ok() {
            let _ = self.read_reply(Stage::Quit, after).await;
        }
        let _ = timeout(after, self.stream.shutdown()).await;
    }
}

fn io_error(stage: Stage, e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => TransportError::Closed { stage },
        _ => TransportError::Io { stage, source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let mut s = String::new();
        push_xtext(&mut s, "abc+2Bd+zz=\u{e9} x\r\n");
        assert_eq!(s, "abc+2Bd+2Bzz+3D+C3+A9+20x+0D+0A");
        assert_eq!(
            notify_param("success,Delay").as_deref(),
            Some("SUCCESS,DELAY")
        );
        assert_eq!(notify_param("never").as_deref(), Some("NEVER"));
        assert_eq!(notify_param("SUCCESS,NEVER"), None);
        assert_eq!(notify_param("SUCCESS\r\nRSET"), None);
        assert_eq!(notify_param(""), None);
        assert_eq!(helo_name("mx.example.com\r\nRSET"), "mx.example.comRSET");
        assert_eq!(helo_name(" \r\n"), "localhost");
        assert!(address_ok("a@b") && address_ok("") && address_ok("\"a>b\\\" c\"@x"));
        assert!(!address_ok("a@b> NOTIFY=NEVER") && !address_ok("<a@b") && !address_ok("\"a@b"));
        assert!(!address_ok("a@b\r\nRSET") && !address_ok("a\u{0}@b"));

        let caps = Capabilities {
            dsn: true,
            ..Capabilities::default()
        };
        let r = OutboundRcpt {
            address: "a@b".into(),
            notify: Some("FAILURE".into()),
            orcpt: Some("rfc822;a+2Bx@b".into()),
        };
        assert_eq!(
            rcpt_command(&r, &caps),
            "RCPT TO:<a@b> NOTIFY=FAILURE ORCPT=rfc822;a+2Bx@b"
        );
        let r = OutboundRcpt {
            orcpt: Some("bad type;x".into()),
            ..r
        };
        assert_eq!(rcpt_command(&r, &caps), "RCPT TO:<a@b> NOTIFY=FAILURE");
        assert_eq!(rcpt_command(&r, &Capabilities::default()), "RCPT TO:<a@b>");
    }
}

/// Any stream a pooled connection can run over.
trait PoolStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PoolStream for T {}

/// An open connection waiting for its next message.
struct Pooled {
    conn: Conn<Box<dyn PoolStream>>,
    caps: Capabilities,
    since: std::time::Instant,
    uses: u32,
}

/// Connections to one next hop, kept open between messages.
///
/// [`Pool::deliver`] behaves like [`deliver`] (same results, same
/// guarantees) but sends the message over an idle connection when one is
/// there, and keeps the connection for the next message when the
/// transaction ended cleanly: a gateway relaying to one server saves the
/// connect, greeting, EHLO and QUIT of every message. A connection idle for
/// longer than [`POOL_IDLE`], or used [`POOL_MAX_USES`] times, is closed. A
/// pooled connection that the next hop closed meanwhile fails at MAIL, before
/// anything is decided; the message then goes over a fresh connection, so a
/// stale connection never costs a retry. At most [`POOL_MAX_IDLE`] idle
/// connections are kept.
pub struct Pool {
    hop: NextHop,
    opts: ClientOptions,
    idle: std::sync::Mutex<Vec<Pooled>>,
}

/// How long an idle connection is kept (Postfix: smtp_connection_cache_time_limit 2 s; next hops commonly time out idle clients after 30 s or more).
pub const POOL_IDLE: Duration = Duration::from_secs(5);
/// Messages per connection before it is closed and reopened.
pub const POOL_MAX_USES: u32 = 100;
/// Idle connections kept per next hop.
pub const POOL_MAX_IDLE: usize = 32;

impl Pool {
    pub fn new(hop: NextHop, opts: ClientOptions) -> Pool {
        Pool {
            hop,
            opts,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn hop(&self) -> &NextHop {
        &self.hop
    }

    fn take(&self) -> Option<Pooled> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(p) = idle.pop() {
            if p.since.elapsed() < POOL_IDLE {
                return Some(p);
            }
            // Too old: dropped (closed without QUIT; harmless for the next hop).
        }
        None
    }

    fn put(&self, mut p: Pooled) {
        p.uses += 1;
        if p.uses >= POOL_MAX_USES {
            return;
        }
        p.since = std::time::Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL_MAX_IDLE {
            idle.push(p);
        }
    }

    async fn connect(&self) -> Result<Box<dyn PoolStream>, TransportError> {
        let after = self.opts.connect_timeout;
        let hop = self.hop.to_string();
        match &self.hop {
            NextHop::Smtp { host, port } | NextHop::Lmtp { host, port } => {
                match timeout(
                    after,
                    tokio::net::TcpStream::connect((host.as_str(), *port)),
                )
                .await
                {
                    Err(_) => Err(TransportError::ConnectTimeout { hop, after }),
                    Ok(Err(source)) => Err(TransportError::Connect { hop, source }),
                    Ok(Ok(s)) => {
                        let _ = s.set_nodelay(true);
                        Ok(Box::new(s))
                    }
                }
            }
            #[cfg(unix)]
            NextHop::LmtpUnix { path } => {
                match timeout(after, tokio::net::UnixStream::connect(path)).await {
                    Err(_) => Err(TransportError::ConnectTimeout { hop, after }),
                    Ok(Err(source)) => Err(TransportError::Connect { hop, source }),
                    Ok(Ok(s)) => Ok(Box::new(s)),
                }
            }
            #[cfg(not(unix))]
            NextHop::LmtpUnix { .. } => Err(TransportError::Connect {
                hop,
                source: io::Error::new(
                    io::ErrorKind::Unsupported,
                    "Unix sockets are not available on this platform",
                ),
            }),
        }
    }

    /// One delivery attempt; see the type's documentation.
    pub async fn deliver(
        &self,
        env: &OutboundEnvelope,
        message: &[u8],
    ) -> Result<Vec<RcptResult>, TransportError> {
        let protocol = self.hop.protocol();
        if State::new(env).all_decided() {
            return Ok(State::new(env).finish());
        }
        if let Some(mut p) = self.take() {
            let mut st = State::new(env);
            let r = transaction(
                &mut p.conn,
                protocol,
                &p.caps,
                &self.opts,
                env,
                message,
                &mut st,
            )
            .await;
            let stale = match &r {
                Err(Abort::Transport(e)) => e.stage() == Stage::MailFrom,
                Err(Abort::Shutdown { stage, .. }) => *stage == Stage::MailFrom,
                _ => false,
            };
            if !(stale && st.results.iter().all(Option::is_none)) {
                return self.finish(p, r, st).await;
            }
            tracing::debug!(hop = %self.hop, "pooled connection was closed by the next hop; reconnecting");
        }
        let mut st = State::new(env);
        let stream = match self.connect().await {
            Ok(s) => s,
            Err(e) => return st.give_up(e),
        };
        let mut conn = Conn::new(stream, self.opts.command_timeout);
        let caps = match open(&mut conn, protocol, &self.opts, &mut st).await {
            Ok(Some(caps)) => caps,
            Ok(None) => {
                conn.quit().await;
                return Ok(st.finish());
            }
            Err(Abort::Shutdown { stage, reply }) => {
                st.fill(|| {
                    Outcome::Temporary(Failure::Remote {
                        stage,
                        reply: reply.clone(),
                    })
                });
                return Ok(st.finish());
            }
            Err(Abort::Transport(e)) => return st.give_up(e),
        };
        let r = transaction(
            &mut conn, protocol, &caps, &self.opts, env, message, &mut st,
        )
        .await;
        let p = Pooled {
            conn,
            caps,
            since: std::time::Instant::now(),
            uses: 0,
        };
        self.finish(p, r, st).await
    }

    async fn finish(
        &self,
        mut p: Pooled,
        r: Result<End, Abort>,
        mut st: State<'_>,
    ) -> Result<Vec<RcptResult>, TransportError> {
        match r {
            Ok(End::Reusable) => self.put(p),
            Ok(End::Quit) => p.conn.quit().await,
            Ok(End::NoQuit) => {}
            Err(Abort::Shutdown { stage, reply }) => {
                st.fill(|| {
                    Outcome::Temporary(Failure::Remote {
                        stage,
                        reply: reply.clone(),
                    })
                });
            }
            Err(Abort::Transport(e)) => return st.give_up(e),
        }
        Ok(st.finish())
    }
}
