//! The sans-IO codec: bytes ⇄ frames ⇄ typed commands and responses.
//!
//! A frame is a 4-byte big-endian length, then that many bytes: one command
//! byte and its data. Strings inside the data are NUL-terminated.
//!
//! Guarantees:
//! - [`FrameDecoder`] and [`Command::decode`] never panic, whatever the input
//!   (fuzzed by `fuzz/fuzz_targets/milter_codec.rs`).
//! - A length prefix above the decoder's limit (at most
//!   [`MAX_FRAME_HARD_CAP`]) is an error as soon as the 4 bytes are seen: the
//!   decoder never allocates more than the limit, whatever the peer claims.
//! - [`Response::encode`] writes frames the MTA can parse: strings have
//!   their NULs replaced by spaces, and a body replacement is split into
//!   chunks of at most [`MAX_BODY_CHUNK`] octets.

use crate::consts::*;
use crate::reply::SmtpReply;

/// What is wrong with the bytes the MTA sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame of {len} bytes is over the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("frame with no command byte")]
    EmptyFrame,
    #[error("unknown command byte 0x{0:02x}")]
    UnknownCommand(u8),
    #[error("malformed '{}' command: {reason}", *.command as char)]
    Malformed { command: u8, reason: &'static str },
    #[error("MTA protocol version {0} is older than 2, which this filter needs")]
    UnsupportedVersion(u32),
    #[error("too many {0}")]
    TooMany(&'static str),
    #[error("'{}' command unexpected here: {reason}", *.command as char)]
    Unexpected { command: u8, reason: &'static str },
}

/// One frame: the command byte and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: u8,
    pub data: Vec<u8>,
}

/// Splits a byte stream into frames.
///
/// Feed it what the socket gave with [`FrameDecoder::feed`], then take
/// frames with [`FrameDecoder::next_frame`] until it returns `Ok(None)`.
/// If the caller only feeds more after `Ok(None)`, the buffer never holds
/// more than one frame plus one read's worth of bytes.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder accepting frames (command byte + data) of at most
    /// `max_frame` octets, clamped to 1..=[`MAX_FRAME_HARD_CAP`].
    pub fn new(max_frame: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_frame: max_frame.clamp(1, MAX_FRAME_HARD_CAP),
        }
    }

    /// The frame limit in force.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Appends bytes read from the MTA.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or an
    /// error for a frame that is empty or over the limit (the stream cannot
    /// be resynchronised after that: close the connection).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len == 0 {
            return Err(ProtocolError::EmptyFrame);
        }
        if len > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let Some(body) = avail.get(4..4 + len) else {
            return Ok(None);
        };
        let frame = Frame {
            command: body[0],
            data: body[1..].to_vec(),
        };
        self.start += 4 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(frame))
    }
}

/// Appends one frame (`command` + `data`) to `out`.
///
/// The caller keeps `data` under [`MAX_FRAME_HARD_CAP`]; every encoder in
/// this crate does.
pub fn encode_frame(command: u8, data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() + 1) as u32;
    out.reserve(5 + data.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.push(command);
    out.extend_from_slice(data);
}

/// The client address family of `SMFIC_CONNECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `U`: unknown (no port or address follows).
    Unknown,
    /// `L`: a Unix-domain socket (the address is a path).
    Unix,
    /// `4`: IPv4.
    Inet,
    /// `6`: IPv6.
    Inet6,
}

impl Family {
    fn wire(self) -> u8 {
        match self {
            Family::Unknown => b'U',
            Family::Unix => b'L',
            Family::Inet => b'4',
            Family::Inet6 => b'6',
        }
    }
}

/// The numbers the MTA offers at negotiation (or the filter answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptNeg {
    pub version: u32,
    pub actions: Actions,
    pub protocol: ProtocolFlags,
}

/// An MTA → filter command.
///
/// Text the MTA sends (host names, addresses, macro values) is decoded as
/// UTF-8 with invalid sequences replaced; header values, body data and
/// unknown commands stay bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `O`: option negotiation.
    OptNeg(OptNeg),
    /// `D`: macros for the command `stage` that follows.
    Macro {
        stage: u8,
        macros: Vec<(String, String)>,
    },
    /// `C`: a new SMTP client. `port` and `address` are 0 and empty for family `U`.
    Connect {
        hostname: String,
        family: Family,
        port: u16,
        address: String,
    },
    /// `H`: HELO/EHLO argument.
    Helo(String),
    /// `M`: MAIL FROM; `args[0]` is the sender as given (`<a@b>`), the rest ESMTP arguments.
    Mail(Vec<String>),
    /// `R`: RCPT TO; `args[0]` is the recipient, the rest ESMTP arguments.
    Rcpt(Vec<String>),
    /// `T`: the DATA command.
    Data,
    /// `L`: one header field.
    Header { name: String, value: Vec<u8> },
    /// `N`: end of headers.
    EndOfHeaders,
    /// `B`: a body chunk.
    Body(Vec<u8>),
    /// `E`: end of message; the data, if any, is a last body chunk.
    EndOfMessage(Vec<u8>),
    /// `A`: the current message is abandoned; the connection stays.
    Abort,
    /// `Q`: close the connection.
    Quit,
    /// `K`: the SMTP client is gone; a new one may follow on this connection.
    QuitNc,
    /// `U`: an SMTP command the MTA did not know.
    Unknown(Vec<u8>),
}

/// Reads NUL-terminated strings and big-endian integers off a frame's data.
struct Reader<'a> {
    d: &'a [u8],
    command: u8,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> ProtocolError {
        ProtocolError::Malformed {
            command: self.command,
            reason,
        }
    }
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.d.get(..4).ok_or_else(|| self.err("short integer"))?;
        let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        self.d = &self.d[4..];
        Ok(v)
    }
    fn u16(&mut self) -> Result<u16, ProtocolError> {
        let b = self.d.get(..2).ok_or_else(|| self.err("short port"))?;
        let v = u16::from_be_bytes([b[0], b[1]]);
        self.d = &self.d[2..];
        Ok(v)
    }
    fn u8(&mut self) -> Result<u8, ProtocolError> {
        let b = *self.d.first().ok_or_else(|| self.err("missing byte"))?;
        self.d = &self.d[1..];
        Ok(b)
    }
    fn cstr(&mut self) -> Result<&'a [u8], ProtocolError> {
        let n = memchr::memchr(0, self.d).ok_or_else(|| self.err("string without NUL"))?;
        let s = &self.d[..n];
        self.d = &self.d[n + 1..];
        Ok(s)
    }
    fn string(&mut self) -> Result<String, ProtocolError> {
        Ok(String::from_utf8_lossy(self.cstr()?).into_owned())
    }
    fn is_empty(&self) -> bool {
        self.d.is_empty()
    }
    /// Every remaining NUL-terminated string; at least one, at most `max`.
    fn strings(&mut self, max: usize, what: &'static str) -> Result<Vec<String>, ProtocolError> {
        let mut v = Vec::new();
        while !self.is_empty() {
            if v.len() == max {
                return Err(ProtocolError::TooMany(what));
            }
            v.push(self.string()?);
        }
        if v.is_empty() {
            return Err(self.err("no argument"));
        }
        Ok(v)
    }
}

impl Command {
    /// Decodes a frame's command byte and data. Never panics.
    pub fn decode(command: u8, data: &[u8]) -> Result<Command, ProtocolError> {
        let mut r = Reader { d: data, command };
        Ok(match command {
            cmd::OPTNEG => {
                let version = r.u32()?;
                let actions = Actions(r.u32()?);
                let protocol = ProtocolFlags(r.u32()?);
                // Anything after the three numbers is ignored, as libmilter does.
                Command::OptNeg(OptNeg {
                    version,
                    actions,
                    protocol,
                })
            }
            cmd::MACRO => {
                let stage = r.u8()?;
                let mut macros = Vec::new();
                while !r.is_empty() {
                    if macros.len() == MAX_MACROS_PER_FRAME {
                        return Err(ProtocolError::TooMany("macros in one frame"));
                    }
                    let name = r.string()?;
                    let value = r.string()?;
                    macros.push((name, value));
                }
                Command::Macro { stage, macros }
            }
            cmd::CONNECT => {
                let hostname = r.string()?;
                let family = match r.u8()? {
                    b'U' => Family::Unknown,
                    b'L' => Family::Unix,
                    b'4' => Family::Inet,
                    b'6' => Family::Inet6,
                    _ => return Err(r.err("unknown address family")),
                };
                let (port, address) = if family == Family::Unknown {
                    (0, String::new())
                } else {
                    (r.u16()?, r.string()?)
                };
                Command::Connect {
                    hostname,
                    family,
                    port,
                    address,
                }
            }
            cmd::HELO => Command::Helo(r.string()?),
            cmd::MAIL => Command::Mail(r.strings(MAX_ESMTP_ARGS + 1, "MAIL arguments")?),
            cmd::RCPT => Command::Rcpt(r.strings(MAX_ESMTP_ARGS + 1, "RCPT arguments")?),
            cmd::HEADER => {
                let name = r.string()?;
                let value = r.cstr()?.to_vec();
                Command::Header { name, value }
            }
            cmd::EOH => Command::EndOfHeaders,
            cmd::BODY => Command::Body(data.to_vec()),
            cmd::BODYEOB => Command::EndOfMessage(data.to_vec()),
            cmd::ABORT => Command::Abort,
            cmd::QUIT => Command::Quit,
            cmd::QUIT_NC => Command::QuitNc,
            cmd::DATA => Command::Data,
            cmd::UNKNOWN => {
                // The command line, NUL-terminated; tolerate a missing NUL.
                let line = match memchr::memchr(0, data) {
                    Some(n) => &data[..n],
                    None => data,
                };
                Command::Unknown(line.to_vec())
            }
            other => return Err(ProtocolError::UnknownCommand(other)),
        })
    }

    /// Like [`Command::decode`], but moves a body chunk out of the frame
    /// instead of copying it.
    pub fn from_frame(frame: Frame) -> Result<Command, ProtocolError> {
        match frame.command {
            cmd::BODY => Ok(Command::Body(frame.data)),
            cmd::BODYEOB => Ok(Command::EndOfMessage(frame.data)),
            c => Command::decode(c, &frame.data),
        }
    }

    /// The command byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::OptNeg(_) => cmd::OPTNEG,
            Command::Macro { .. } => cmd::MACRO,
            Command::Connect { .. } => cmd::CONNECT,
            Command::Helo(_) => cmd::HELO,
            Command::Mail(_) => cmd::MAIL,
            Command::Rcpt(_) => cmd::RCPT,
            Command::Data => cmd::DATA,
            Command::Header { .. } => cmd::HEADER,
            Command::EndOfHeaders => cmd::EOH,
            Command::Body(_) => cmd::BODY,
            Command::EndOfMessage(_) => cmd::BODYEOB,
            Command::Abort => cmd::ABORT,
            Command::Quit => cmd::QUIT,
            Command::QuitNc => cmd::QUIT_NC,
            Command::Unknown(_) => cmd::UNKNOWN,
        }
    }

    /// Appends this command as the MTA would send it (tests and tools play
    /// the MTA with it; `Command::decode` of the result gives it back).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut d = Vec::new();
        match self {
            Command::OptNeg(o) => {
                d.extend_from_slice(&o.version.to_be_bytes());
                d.extend_from_slice(&o.actions.0.to_be_bytes());
                d.extend_from_slice(&o.protocol.0.to_be_bytes());
            }
            Command::Macro { stage, macros } => {
                d.push(*stage);
                for (n, v) in macros {
                    push_cstr(&mut d, n.as_bytes());
                    push_cstr(&mut d, v.as_bytes());
                }
            }
            Command::Connect {
                hostname,
                family,
                port,
                address,
            } => {
                push_cstr(&mut d, hostname.as_bytes());
                d.push(family.wire());
                if *family != Family::Unknown {
                    d.extend_from_slice(&port.to_be_bytes());
                    push_cstr(&mut d, address.as_bytes());
                }
            }
            Command::Helo(h) => push_cstr(&mut d, h.as_bytes()),
            Command::Mail(a) | Command::Rcpt(a) => {
                for s in a {
                    push_cstr(&mut d, s.as_bytes());
                }
            }
            Command::Header { name, value } => {
                push_cstr(&mut d, name.as_bytes());
                push_cstr(&mut d, value);
            }
            Command::Body(b) | Command::EndOfMessage(b) => d.extend_from_slice(b),
            Command::Unknown(l) => push_cstr(&mut d, l),
            Command::Data
            | Command::EndOfHeaders
            | Command::Abort
            | Command::Quit
            | Command::QuitNc => {}
        }
        encode_frame(self.code(), &d, out);
    }
}

/// Appends `s` with NULs replaced by spaces, then a NUL.
fn push_cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().map(|&b| if b == 0 { b' ' } else { b }));
    out.push(0);
}

/// A filter → MTA reply or message modification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `O`: the negotiation answer, with the macros wanted per stage
    /// (`SMFIR_SETSYMLIST` data, sent only when that action was granted).
    OptNeg {
        version: u32,
        actions: Actions,
        protocol: ProtocolFlags,
        symlists: Vec<(MacroStage, String)>,
    },
    /// `c`
    Continue,
    /// `a`
    Accept,
    /// `r`: the MTA's default 5xx.
    Reject,
    /// `t`: the MTA's default 4xx.
    TempFail,
    /// `d`
    Discard,
    /// `s`: skip the rest of the body (only if `SMFIP_SKIP` was negotiated).
    Skip,
    /// `p`: still working, restart your timer.
    Progress,
    /// `y`: reject or tempfail with this reply.
    ReplyCode(SmtpReply),
    /// `h`: append a header.
    AddHeader { name: String, value: String },
    /// `i`: insert a header at position `index` (0 = first).
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// `m`: change the `index`-th (from 1) header called `name`; an empty value deletes it.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// `+`: add a recipient.
    AddRcpt(String),
    /// `2`: add a recipient with ESMTP arguments.
    AddRcptPar { rcpt: String, args: String },
    /// `-`: delete a recipient.
    DelRcpt(String),
    /// `b`: the new body; encoded as one `b` frame per [`MAX_BODY_CHUNK`] octets.
    ReplaceBody(Vec<u8>),
    /// `e`: change the envelope sender, with optional ESMTP arguments.
    ChangeFrom { from: String, args: Option<String> },
    /// `q`: quarantine (Postfix: hold queue) with this reason.
    Quarantine(String),
}

impl Response {
    /// Appends the frame(s) for this response to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut d = Vec::new();
        let code = match self {
            Response::OptNeg {
                version,
                actions,
                protocol,
                symlists,
            } => {
                d.extend_from_slice(&version.to_be_bytes());
                d.extend_from_slice(&actions.0.to_be_bytes());
                d.extend_from_slice(&protocol.0.to_be_bytes());
                for (stage, list) in symlists {
                    d.extend_from_slice(&stage.wire().to_be_bytes());
                    push_cstr(&mut d, list.as_bytes());
                }
                resp::OPTNEG
            }
            Response::Continue => resp::CONTINUE,
            Response::Accept => resp::ACCEPT,
            Response::Reject => resp::REJECT,
            Response::TempFail => resp::TEMPFAIL,
            Response::Discard => resp::DISCARD,
            Response::Skip => resp::SKIP,
            Response::Progress => resp::PROGRESS,
            Response::ReplyCode(r) => {
                push_cstr(&mut d, r.to_wire().as_bytes());
                resp::REPLYCODE
            }
            Response::AddHeader { name, value } => {
                push_cstr(&mut d, name.as_bytes());
                push_cstr(&mut d, value.as_bytes());
                resp::ADDHEADER
            }
            Response::InsertHeader { index, name, value } => {
                d.extend_from_slice(&index.to_be_bytes());
                push_cstr(&mut d, name.as_bytes());
                push_cstr(&mut d, value.as_bytes());
                resp::INSHEADER
            }
            Response::ChangeHeader { index, name, value } => {
                d.extend_from_slice(&index.to_be_bytes());
                push_cstr(&mut d, name.as_bytes());
                push_cstr(&mut d, value.as_bytes());
                resp::CHGHEADER
            }
            Response::AddRcpt(r) => {
                push_cstr(&mut d, r.as_bytes());
                resp::ADDRCPT
            }
            Response::AddRcptPar { rcpt, args } => {
                push_cstr(&mut d, rcpt.as_bytes());
                push_cstr(&mut d, args.as_bytes());
                resp::ADDRCPT_PAR
            }
            Response::DelRcpt(r) => {
                push_cstr(&mut d, r.as_bytes());
                resp::DELRCPT
            }
            Response::ReplaceBody(body) => {
                if body.is_empty() {
                    encode_frame(resp::REPLBODY, &[], out);
                }
                for chunk in body.chunks(MAX_BODY_CHUNK) {
                    encode_frame(resp::REPLBODY, chunk, out);
                }
                return;
            }
            Response::ChangeFrom { from, args } => {
                push_cstr(&mut d, from.as_bytes());
                if let Some(a) = args {
                    push_cstr(&mut d, a.as_bytes());
                }
                resp::CHGFROM
            }
            Response::Quarantine(reason) => {
                push_cstr(&mut d, reason.as_bytes());
                resp::QUARANTINE
            }
        };
        encode_frame(code, &d, out);
    }

    /// Decodes one response frame as the MTA reads it: the other half of
    /// [`Response::encode`], for tests and tools. A body replacement comes
    /// back one chunk per frame. Never panics.
    pub fn decode(code: u8, data: &[u8]) -> Result<Response, ProtocolError> {
        let mut r = Reader {
            d: data,
            command: code,
        };
        Ok(match code {
            resp::OPTNEG => {
                let version = r.u32()?;
                let actions = Actions(r.u32()?);
                let protocol = ProtocolFlags(r.u32()?);
                let mut symlists = Vec::new();
                while !r.is_empty() {
                    let n = r.u32()?;
                    let stage = MacroStage::ALL
                        .into_iter()
                        .find(|s| s.wire() == n)
                        .ok_or_else(|| r.err("unknown macro stage"))?;
                    symlists.push((stage, r.string()?));
                }
                Response::OptNeg {
                    version,
                    actions,
                    protocol,
                    symlists,
                }
            }
            resp::CONTINUE => Response::Continue,
            resp::ACCEPT => Response::Accept,
            resp::REJECT => Response::Reject,
            resp::TEMPFAIL => Response::TempFail,
            resp::DISCARD => Response::Discard,
            resp::SKIP => Response::Skip,
            resp::PROGRESS => Response::Progress,
            resp::REPLYCODE => {
                let text = r.string()?;
                Response::ReplyCode(parse_wire_reply(&text).ok_or_else(|| r.err("bad reply"))?)
            }
            resp::ADDHEADER => Response::AddHeader {
                name: r.string()?,
                value: r.string()?,
            },
            resp::INSHEADER => Response::InsertHeader {
                index: r.u32()?,
                name: r.string()?,
                value: r.string()?,
            },
            resp::CHGHEADER => Response::ChangeHeader {
                index: r.u32()?,
                name: r.string()?,
                value: r.string()?,
            },
            resp::ADDRCPT => Response::AddRcpt(r.string()?),
            resp::ADDRCPT_PAR => Response::AddRcptPar {
                rcpt: r.string()?,
                args: r.string()?,
            },
            resp::DELRCPT => Response::DelRcpt(r.string()?),
            resp::REPLBODY => Response::ReplaceBody(data.to_vec()),
            resp::CHGFROM => {
                let from = r.string()?;
                let args = if r.is_empty() {
                    None
                } else {
                    Some(r.string()?)
                };
                Response::ChangeFrom { from, args }
            }
            resp::QUARANTINE => Response::Quarantine(r.string()?),
            other => return Err(ProtocolError::UnknownCommand(other)),
        })
    }
}

/// Parses `550-5.7.1 a\r\n550 5.7.1 b` back into a reply (un-doubling `%`).
fn parse_wire_reply(s: &str) -> Option<SmtpReply> {
    let mut code = None;
    let mut enhanced: Option<String> = None;
    let mut lines = Vec::new();
    for line in s.split("\r\n") {
        let c: u16 = line.get(..3)?.parse().ok()?;
        if code.is_some_and(|x| x != c) {
            return None;
        }
        code = Some(c);
        let rest = line.get(4..).unwrap_or("");
        let first = rest.split(' ').next().unwrap_or("");
        let text = if first.split('.').count() == 3 && first.starts_with(['4', '5']) {
            enhanced = Some(first.to_string());
            rest.get(first.len() + 1..).unwrap_or("")
        } else {
            rest
        };
        lines.push(text.replace("%%", "%"));
    }
    SmtpReply::new(code?, enhanced.as_deref(), &lines.join("\n")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(bytes: &[u8]) -> Vec<Frame> {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        d.feed(bytes);
        let mut v = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            v.push(f);
        }
        assert_eq!(d.buffered(), 0);
        v
    }

    fn roundtrip(c: Command) {
        let mut out = Vec::new();
        c.encode(&mut out);
        let f = frames(&out);
        assert_eq!(f.len(), 1);
        assert_eq!(Command::decode(f[0].command, &f[0].data).unwrap(), c);
    }

    #[test]
    fn every_command_roundtrips() {
        let cases = vec![
            Command::OptNeg(OptNeg {
                version: 6,
                actions: Actions(0x1ff),
                protocol: ProtocolFlags(0x1fffff),
            }),
            Command::Macro {
                stage: cmd::CONNECT,
                macros: vec![
                    ("j".into(), "mx.example.com".into()),
                    ("{client_addr}".into(), "192.0.2.1".into()),
                ],
            },
            Command::Macro {
                stage: cmd::MAIL,
                macros: vec![],
            },
            Command::Connect {
                hostname: "client.example".into(),
                family: Family::Inet,
                port: 25001,
                address: "192.0.2.1".into(),
            },
            Command::Connect {
                hostname: "v6.example".into(),
                family: Family::Inet6,
                port: 1,
                address: "2001:db8::1".into(),
            },
            Command::Connect {
                hostname: "localhost".into(),
                family: Family::Unix,
                port: 0,
                address: "/run/x.sock".into(),
            },
            Command::Connect {
                hostname: "unknown".into(),
                family: Family::Unknown,
                port: 0,
                address: String::new(),
            },
            Command::Helo("client.example".into()),
            Command::Mail(vec![
                "<a@example.org>".into(),
                "SIZE=100".into(),
                "BODY=8BITMIME".into(),
            ]),
            Command::Rcpt(vec!["<b@example.com>".into(), "NOTIFY=NEVER".into()]),
            Command::Data,
            Command::Header {
                name: "Subject".into(),
                value: b" hello\n\tworld \xff".to_vec(),
            },
            Command::EndOfHeaders,
            Command::Body(b"line\r\n".to_vec()),
            Command::EndOfMessage(vec![]),
            Command::EndOfMessage(b"tail\r\n".to_vec()),
            Command::Abort,
            Command::Quit,
            Command::QuitNc,
            Command::Unknown(b"XFOO bar".to_vec()),
        ];
        for c in cases {
            roundtrip(c);
        }
    }

    #[test]
    fn connect_wire_layout() {
        // hostname NUL, family, port (big-endian), address NUL
        let mut data = b"h\0".to_vec();
        data.push(b'4');
        data.extend_from_slice(&[0x1f, 0x90]);
        data.extend_from_slice(b"10.0.0.1\0");
        assert_eq!(
            Command::decode(b'C', &data).unwrap(),
            Command::Connect {
                hostname: "h".into(),
                family: Family::Inet,
                port: 8080,
                address: "10.0.0.1".into()
            }
        );
    }

    #[test]
    fn malformed_commands_are_errors() {
        let bad: Vec<(u8, &[u8])> = vec![
            (b'O', b"\0\0\0\x06\0\0"),
            (b'C', b"host"),
            (b'C', b"host\0X\0\0a\0"),
            (b'C', b"host\x004\0"),
            (b'H', b"no nul"),
            (b'M', b""),
            (b'R', b"<a>"),
            (b'L', b"Subject\0value"),
            (b'D', b""),
            (b'D', b"Mi\0"),
            (b'z', b""),
        ];
        for (c, d) in bad {
            assert!(Command::decode(c, d).is_err(), "{} {:?}", c as char, d);
        }
    }

    #[test]
    fn argument_and_macro_counts_are_bounded() {
        let many: Vec<u8> = (0..100).flat_map(|_| b"X=1\0".to_vec()).collect();
        assert_eq!(
            Command::decode(b'M', &many),
            Err(ProtocolError::TooMany("MAIL arguments"))
        );
        let mut m = vec![b'C'];
        for _ in 0..=MAX_MACROS_PER_FRAME {
            m.extend_from_slice(b"a\0b\0");
        }
        assert_eq!(
            Command::decode(b'D', &m),
            Err(ProtocolError::TooMany("macros in one frame"))
        );
    }

    #[test]
    fn decoder_handles_byte_by_byte_input() {
        let mut bytes = Vec::new();
        Command::Helo("a".into()).encode(&mut bytes);
        Command::Body(vec![7; 1000]).encode(&mut bytes);
        Command::Quit.encode(&mut bytes);
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut got = Vec::new();
        for b in &bytes {
            d.feed(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.command);
            }
        }
        assert_eq!(got, vec![b'H', b'B', b'Q']);
    }

    #[test]
    fn oversized_and_empty_frames_are_errors_before_the_data_arrives() {
        let mut d = FrameDecoder::new(70_000);
        d.feed(&(70_001u32).to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(ProtocolError::FrameTooLarge {
                len: 70_001,
                max: 70_000
            })
        );
        let mut d = FrameDecoder::new(usize::MAX);
        assert_eq!(d.max_frame(), MAX_FRAME_HARD_CAP);
        d.feed(&u32::MAX.to_be_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
        let mut d = FrameDecoder::new(100);
        d.feed(&[0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(ProtocolError::EmptyFrame));
        // A frame exactly at the limit is fine.
        let mut d = FrameDecoder::new(10);
        d.feed(&[0, 0, 0, 10, b'B', 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(d.next_frame().unwrap().unwrap().data.len(), 9);
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random walk over short inputs.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            let mut buf = Vec::new();
            let n = (x % 40) as usize;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf.push(x as u8);
            }
            let code = buf.first().copied().unwrap_or(b'C');
            let _ = Command::decode(code, buf.get(1..).unwrap_or(&[]));
            let _ = Response::decode(code, buf.get(1..).unwrap_or(&[]));
            let mut d = FrameDecoder::new(64);
            d.feed(&buf);
            while let Ok(Some(_)) = d.next_frame() {}
        }
    }

    fn encode_one(r: &Response) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(&mut out);
        out
    }

    #[test]
    fn every_response_encodes_to_its_wire_form() {
        let table: Vec<(Response, &[u8])> = vec![
            (Response::Continue, b"\0\0\0\x01c"),
            (Response::Accept, b"\0\0\0\x01a"),
            (Response::Reject, b"\0\0\0\x01r"),
            (Response::TempFail, b"\0\0\0\x01t"),
            (Response::Discard, b"\0\0\0\x01d"),
            (Response::Skip, b"\0\0\0\x01s"),
            (Response::Progress, b"\0\0\0\x01p"),
            (
                Response::ReplyCode(SmtpReply::reject("5.7.1", "50% off").unwrap()),
                b"\0\0\0\x14y550 5.7.1 50%% off\0",
            ),
            (
                Response::AddHeader {
                    name: "X-A".into(),
                    value: "1".into(),
                },
                b"\0\0\0\x07hX-A\x001\0",
            ),
            (
                Response::InsertHeader {
                    index: 2,
                    name: "X-A".into(),
                    value: "1".into(),
                },
                b"\0\0\0\x0bi\0\0\0\x02X-A\x001\0",
            ),
            (
                Response::ChangeHeader {
                    index: 1,
                    name: "X-A".into(),
                    value: "".into(),
                },
                b"\0\0\0\x0am\0\0\0\x01X-A\0\0",
            ),
            (Response::AddRcpt("<a@b>".into()), b"\0\0\0\x07+<a@b>\0"),
            (
                Response::AddRcptPar {
                    rcpt: "<a@b>".into(),
                    args: "NOTIFY=NEVER".into(),
                },
                b"\0\0\0\x142<a@b>\0NOTIFY=NEVER\0",
            ),
            (Response::DelRcpt("<a@b>".into()), b"\0\0\0\x07-<a@b>\0"),
            (
                Response::ChangeFrom {
                    from: "<a@b>".into(),
                    args: None,
                },
                b"\0\0\0\x07e<a@b>\0",
            ),
            (
                Response::ChangeFrom {
                    from: "<a@b>".into(),
                    args: Some("SIZE=1".into()),
                },
                b"\0\0\0\x0ee<a@b>\0SIZE=1\0",
            ),
            (Response::Quarantine("virus".into()), b"\0\0\0\x07qvirus\0"),
            (
                Response::OptNeg {
                    version: 6,
                    actions: Actions::ADDHDRS | Actions::SETSYMLIST,
                    protocol: ProtocolFlags::NR_HDR,
                    symlists: vec![(MacroStage::Eom, "i".into())],
                },
                b"\0\0\0\x13O\0\0\0\x06\0\0\x01\x01\0\0\0\x80\0\0\0\x05i\0",
            ),
        ];
        for (r, wire) in table {
            assert_eq!(encode_one(&r), wire, "{r:?}");
            let f = frames(wire);
            assert_eq!(Response::decode(f[0].command, &f[0].data).unwrap(), r);
        }
    }

    #[test]
    fn nul_in_strings_becomes_space() {
        let out = encode_one(&Response::AddHeader {
            name: "X".into(),
            value: "a\0b".into(),
        });
        assert_eq!(out, b"\0\0\0\x07hX\0a b\0");
    }

    #[test]
    fn replbody_is_chunked() {
        let body: Vec<u8> = (0..(MAX_BODY_CHUNK * 2 + 10)).map(|i| i as u8).collect();
        let out = encode_one(&Response::ReplaceBody(body.clone()));
        let f = frames(&out);
        assert_eq!(f.len(), 3);
        assert!(f
            .iter()
            .all(|f| f.command == b'b' && f.data.len() <= MAX_BODY_CHUNK));
        assert_eq!(f[0].data.len(), MAX_BODY_CHUNK);
        assert_eq!(f[2].data.len(), 10);
        let joined: Vec<u8> = f.into_iter().flat_map(|f| f.data).collect();
        assert_eq!(joined, body);
        // An empty body is still one (empty) replacement frame.
        assert_eq!(encode_one(&Response::ReplaceBody(vec![])), b"\0\0\0\x01b");
    }

    #[test]
    fn multi_line_reply_roundtrips() {
        let r = SmtpReply::new(554, Some("5.7.1"), "one 10%\ntwo").unwrap();
        let out = encode_one(&Response::ReplyCode(r.clone()));
        let f = frames(&out);
        assert_eq!(f[0].data, b"554-5.7.1 one 10%%\r\n554 5.7.1 two\0");
        assert_eq!(
            Response::decode(b'y', &f[0].data).unwrap(),
            Response::ReplyCode(r)
        );
    }
}
