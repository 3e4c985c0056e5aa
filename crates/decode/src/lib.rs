//! mxguard's decoder: one input (a message, a file) becomes a walk over scan
//! objects — the input itself, every MIME part, archive member, document
//! stream, embedded file and script — each with its true type, declared name
//! and type, and location (`part[2]/invoice.zip/a.exe`).
//!
//! # Guarantees
//! - **Never panics** on any input (fuzzed: `fuzz/`).
//! - **Bounded**: every limit is a field of [`DecodeBudget`]. Exceeding one stops
//!   that branch (or, for time, object count and total bytes, the whole walk)
//!   and reports `Heuristics.Limits.Exceeded.<Limit>`, so nothing is silently
//!   left unscanned. Memory is bounded by about `max_depth × max_object_size`
//!   plus the input: members are decompressed as streams straight into a
//!   size-capped buffer, and each object is visited and dropped before its next
//!   sibling is decoded.
//! - **Parents before children**: a [`Visitor`] sees the raw container first,
//!   then its members, depth first, so a signature on the container fires
//!   before any decoding work, and [`Flow::Stop`] ends the walk at once.
//!
//! The [`rewrite`] module undoes part of a walk: given the locations of
//! harmful objects in a message, it removes the MIME parts holding them and
//! leaves a text notice in their place (the gateway's `clean` action), finding
//! the parts with the same MIME splitter, so with the same numbering.
//!
//! # DESIGN
//! The walk (`Walk::process`) visits an object, asks [`kind::container_kind`]
//! what it is by magic bytes (never by name or Content-Type), and hands its
//! bytes to that reader with an [`Extractor`]. A reader only parses its format:
//! for each member it calls [`Extractor::child`], [`Extractor::child_owned`] or
//! [`Extractor::child_reader`], and the extractor enforces the budget and
//! recurses. Heuristics that look at one member's name and type
//! (`heur::name_checks`) run in the extractor, so every reader gets them;
//! format-specific ones (encrypted entries, macros, PDF actions) are reported
//! by the reader through [`Extractor::heuristic`].
//!
//! A reader may force the reader of a member ([`ChildMeta::kind`]: an attached
//! `message/rfc822` is mail whatever its first header). A member whose bytes are
//! its container's again (a text body that the type table calls MHTML but that
//! has no headers; a zip quine) is not walked a second time, so such input
//! cannot loop down to the depth limit. Executables are opened as zips only
//! when a consistent end-of-central-directory record closes them
//! (self-extractors). The 7z decoder we depend on can panic on crafted LZMA
//! data; that one call is wrapped in `catch_unwind` and reported as
//! `Heuristics.Broken.7z` (so the workspace must not build with `panic = "abort"`).

pub mod budget;
pub mod heur;
pub mod html;
pub mod kind;
pub mod text;

mod archive;
mod bytes;
mod codec;
mod doc;
mod mail;

pub use budget::{DecodeBudget, HeuristicsConfig, Limit};
pub use kind::Kind;
pub use mail::rewrite;
pub use mxguard_sigs::filetype::FileType;

use mxguard_types::Finding;
use std::borrow::Cow;
use std::io::Read;
use std::time::Instant;

/// One object to scan.
#[derive(Debug, Clone)]
pub struct ScanObject<'a> {
    /// The decoded bytes (borrowed from the input or its parent where possible).
    pub data: Cow<'a, [u8]>,
    /// True type by magic bytes.
    pub file_type: FileType,
    /// The type of the container it came from (`None` for the input itself).
    pub container: Option<FileType>,
    /// Declared file name (attachment name, archive member path).
    pub name: Option<String>,
    /// Declared type (MIME Content-Type), lowercased, without parameters.
    pub declared_type: Option<String>,
    /// Location inside the input (`part[2]/invoice.zip/a.exe`); empty for the input.
    pub location: String,
    /// Nesting depth (the input is 0).
    pub depth: u32,
    /// Decoded text (UTF-8, normalised for content rules) when
    /// [`DecodeOptions::text`] is on and the object is text or HTML.
    pub text: Option<String>,
    /// Links found in text and HTML objects when [`DecodeOptions::text`] is on,
    /// and links readers report (PDF `/URI` actions) always.
    pub links: Vec<Link>,
}

/// A link with the text a reader sees for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target as written (entity-decoded, trimmed).
    pub href: String,
    /// The displayed text (HTML anchor text, PDF link rectangle text), if any.
    pub text: Option<String>,
}

/// What to do after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Receives the walk: objects (parents before children) and heuristic findings.
pub trait Visitor {
    /// Called once per object. [`Flow::Stop`] ends the walk.
    fn object(&mut self, obj: &ScanObject<'_>) -> Flow;
    /// Called for each heuristic or limit finding. [`Flow::Stop`] ends the walk.
    fn finding(&mut self, finding: Finding) -> Flow;
    /// Links a reader found inside the container at `location` (PDF `/URI`
    /// actions, ...), reported after that object was visited.
    fn links(&mut self, location: &str, links: Vec<Link>) {
        let _ = (location, links);
    }
}

/// Options beyond the budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    pub budget: DecodeBudget,
    pub heuristics: HeuristicsConfig,
    /// Fill [`ScanObject::text`] and text links (the policy layer wants them; the
    /// antivirus scan alone does not).
    pub text: bool,
    /// Scan the input as one object: open no containers (`mxguard scan --no-decode`).
    pub raw_only: bool,
}

/// Counts for one walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects visited, the input included.
    pub objects: usize,
    /// Decoded bytes (the input not counted).
    pub decoded_bytes: u64,
    /// Limits that were exceeded.
    pub limits: Vec<Limit>,
    /// The walk ended early: a visitor said stop, or a global limit was hit.
    pub stopped: bool,
}

/// The decoder. Cheap to clone and share; holds only configuration.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    opts: DecodeOptions,
}

impl Decoder {
    pub fn new(opts: DecodeOptions) -> Decoder {
        Decoder { opts }
    }

    pub fn options(&self) -> &DecodeOptions {
        &self.opts
    }

    /// Walks `input` (declared name optional), calling `visitor` for every object.
    /// Never panics; bounded by the budget.
    pub fn walk(&self, input: &[u8], name: Option<&str>, visitor: &mut dyn Visitor) -> Summary {
        let mut w = Walk {
            opts: &self.opts,
            visitor,
            start: Instant::now(),
            summary: Summary::default(),
            stop: false,
        };
        let ft = kind::true_type(input);
        let mut obj = ScanObject {
            data: Cow::Borrowed(input),
            file_type: ft,
            container: None,
            name: name.map(str::to_string),
            declared_type: None,
            location: String::new(),
            depth: 0,
            text: None,
            links: Vec::new(),
        };
        w.enrich(&mut obj, None);
        w.process(obj, None);
        w.summary.stopped |= w.stop;
        w.summary
    }

    /// Like [`walk`](Self::walk), but opens the input with the reader for `kind`
    /// whatever its magic bytes say (fuzzing one reader; forcing a format).
    pub fn walk_as(&self, kind: Kind, input: &[u8], visitor: &mut dyn Visitor) -> Summary {
        let mut w = Walk {
            opts: &self.opts,
            visitor,
            start: Instant::now(),
            summary: Summary::default(),
            stop: false,
        };
        let obj = ScanObject {
            data: Cow::Borrowed(input),
            file_type: kind::true_type(input),
            container: None,
            name: None,
            declared_type: None,
            location: String::new(),
            depth: 0,
            text: None,
            links: Vec::new(),
        };
        w.summary.objects += 1;
        if w.visitor.object(&obj) == Flow::Continue {
            w.extract(&obj, kind);
        }
        w.summary.stopped |= w.stop;
        w.summary
    }

    /// Decodes `input` into a flat list of objects and the heuristic findings
    /// (for tools and tests; front-ends use [`walk`](Self::walk), which keeps
    /// memory bounded by depth rather than by the whole decoded tree).
    pub fn decode<'a>(&self, input: &'a [u8]) -> Decoded<'a> {
        struct Collect<'a> {
            input: &'a [u8],
            out: Decoded<'a>,
        }
        impl Visitor for Collect<'_> {
            fn object(&mut self, obj: &ScanObject<'_>) -> Flow {
                let data = if obj.depth == 0 {
                    Cow::Borrowed(self.input)
                } else {
                    Cow::Owned(obj.data.to_vec())
                };
                self.out.objects.push(ScanObject {
                    data,
                    file_type: obj.file_type,
                    container: obj.container,
                    name: obj.name.clone(),
                    declared_type: obj.declared_type.clone(),
                    location: obj.location.clone(),
                    depth: obj.depth,
                    text: obj.text.clone(),
                    links: obj.links.clone(),
                });
                Flow::Continue
            }
            fn finding(&mut self, finding: Finding) -> Flow {
                self.out.findings.push(finding);
                Flow::Continue
            }
            fn links(&mut self, location: &str, links: Vec<Link>) {
                if let Some(o) = self
                    .out
                    .objects
                    .iter_mut()
                    .rev()
                    .find(|o| o.location == location)
                {
                    o.links.extend(links);
                }
            }
        }
        let mut c = Collect {
            input,
            out: Decoded::default(),
        };
        let summary = self.walk(input, None, &mut c);
        c.out.summary = summary;
        c.out
    }
}

/// The result of [`Decoder::decode`].
#[derive(Debug, Clone, Default)]
pub struct Decoded<'a> {
    pub objects: Vec<ScanObject<'a>>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

/// What a reader knows about one member before its bytes are read.
#[derive(Debug, Clone, Default)]
pub struct ChildMeta {
    /// Location segment appended to the container's location (`part[2]`,
    /// `invoice.zip`, `part[2]/invoice.zip`, `Macros/VBA/Module1`).
    pub segment: String,
    /// Declared file name, if the format has one.
    pub name: Option<String>,
    /// Declared MIME type, lowercased, without parameters.
    pub declared_type: Option<String>,
    /// Text already decoded by the reader (a MIME text part in its charset), used
    /// for [`ScanObject::text`] instead of guessing.
    pub text: Option<String>,
    /// Open the member with this reader whatever its magic bytes say (an
    /// attached `message/rfc822` whose first header is not one the type table
    /// knows, an mbox message). `None`: by magic bytes.
    pub kind: Option<Kind>,
}

impl ChildMeta {
    /// A member known by its name, which is also its location segment.
    pub fn named(name: impl Into<String>) -> ChildMeta {
        let name = name.into();
        ChildMeta {
            segment: name.clone(),
            name: Some(name),
            ..Default::default()
        }
    }
    /// A member without a name, located by `segment`.
    pub fn at(segment: impl Into<String>) -> ChildMeta {
        ChildMeta {
            segment: segment.into(),
            ..Default::default()
        }
    }
}

/// Reads in this many bytes per step when draining a member stream.
const READ_CHUNK: usize = 64 << 10;

struct Walk<'o, 'v> {
    opts: &'o DecodeOptions,
    visitor: &'v mut dyn Visitor,
    start: Instant,
    summary: Summary,
    stop: bool,
}

impl Walk<'_, '_> {
    fn report(&mut self, f: Finding) {
        if self.visitor.finding(f) == Flow::Stop {
            self.stop = true;
        }
    }

    /// Reports a limit once per walk; `global` limits end the walk.
    fn limit(&mut self, limit: Limit, location: &str, detail: String) {
        let global = matches!(
            limit,
            Limit::MaxFiles | Limit::MaxScanSize | Limit::MaxScanTime
        );
        if global {
            self.stop = true;
        }
        if self.summary.limits.contains(&limit) {
            return;
        }
        self.summary.limits.push(limit);
        self.report(Finding::heuristic(limit.finding_name(), location, detail));
    }

    fn out_of_time(&mut self, location: &str) -> bool {
        if self.start.elapsed() > self.opts.budget.max_time {
            let t = self.opts.budget.max_time;
            self.limit(
                Limit::MaxScanTime,
                location,
                format!("decoding took longer than {t:?}"),
            );
            return true;
        }
        false
    }

    /// Fills type-dependent fields (text, links) of a fresh object.
    fn enrich(&mut self, obj: &mut ScanObject<'_>, pre_text: Option<String>) {
        match obj.file_type {
            FileType::Html | FileType::HtmlUtf16 if self.opts.text => {
                // A reader's decoded text (a MIME part in its charset) beats guessing.
                let doc = match pre_text {
                    Some(t) => html::analyse(t.as_bytes()),
                    None => html::analyse(&obj.data),
                };
                obj.links = doc.links;
                obj.text = Some(doc.text);
            }
            // Text by magic bytes, or text a reader decoded (a text/* part whose
            // bytes the type table calls something else, e.g. quoted headers).
            ft if self.opts.text && (ft == FileType::Text || pre_text.is_some()) => {
                let t = pre_text.unwrap_or_else(|| text::to_utf8(&obj.data));
                obj.links = text::links(&t);
                obj.text = Some(text::normalize(&t));
            }
            _ => {}
        }
    }

    fn process(&mut self, obj: ScanObject<'_>, forced: Option<Kind>) {
        if self.stop {
            return;
        }
        self.summary.objects += 1;
        if self.visitor.object(&obj) == Flow::Stop {
            self.stop = true;
            return;
        }
        if self.stop || self.opts.raw_only || self.out_of_time(&obj.location) {
            return;
        }
        if let Some(k) = forced.or_else(|| kind::container_kind(&obj.data, obj.file_type)) {
            self.extract(&obj, k);
        } else if let Some(what) = kind::unsupported_container(&obj.data, obj.file_type) {
            self.report(Finding::heuristic(
                format!("Heuristics.Unscannable.{what}"),
                obj.location.as_str(),
                format!("{what} files are not opened: what they hold was not scanned"),
            ));
        }
    }

    /// Opens `obj` with the reader for `k`.
    fn extract(&mut self, obj: &ScanObject<'_>, k: Kind) {
        let mut ex = Extractor {
            walk: self,
            data: &obj.data,
            location: &obj.location,
            name: obj.name.as_deref(),
            file_type: obj.file_type,
            depth: obj.depth,
            depth_reported: false,
        };
        match k {
            Kind::Mail => mail::extract(&obj.data, &mut ex),
            Kind::Mbox => mail::extract_mbox(&obj.data, &mut ex),
            Kind::Uuencode => mail::extract_uuencode(&obj.data, &mut ex),
            Kind::BinHex => mail::extract_binhex(&obj.data, &mut ex),
            Kind::Tnef => mail::extract_tnef(&obj.data, &mut ex),
            Kind::Zip => archive::zip(&obj.data, &mut ex),
            Kind::Gzip => archive::gzip(&obj.data, &mut ex),
            Kind::Bzip2 => archive::bzip2(&obj.data, &mut ex),
            Kind::Xz => archive::xz(&obj.data, &mut ex),
            Kind::Tar => archive::tar(&obj.data, &mut ex),
            Kind::SevenZ => archive::sevenz(&obj.data, &mut ex),
            Kind::Cpio => archive::cpio(&obj.data, &mut ex),
            Kind::Cab => archive::cab(&obj.data, &mut ex),
            Kind::Rar => archive::rar(&obj.data, &mut ex),
            Kind::Iso => archive::iso(&obj.data, &mut ex),
            Kind::Szdd => archive::szdd(&obj.data, &mut ex),
            Kind::Ole2 => doc::ole2(&obj.data, &mut ex),
            Kind::Pdf => doc::pdf(&obj.data, &mut ex),
            Kind::Rtf => doc::rtf(&obj.data, &mut ex),
            Kind::Html => html::extract(&obj.data, &mut ex),
        }
    }
}

/// A reader's handle on the walk: hands over members, reports findings, and
/// enforces the [`DecodeBudget`].
pub struct Extractor<'w, 'o, 'v> {
    walk: &'w mut Walk<'o, 'v>,
    /// The container's bytes (a member equal to them is not walked again).
    data: &'w [u8],
    location: &'w str,
    name: Option<&'w str>,
    file_type: FileType,
    depth: u32,
    depth_reported: bool,
}

impl Extractor<'_, '_, '_> {
    pub fn budget(&self) -> &DecodeBudget {
        &self.walk.opts.budget
    }

    pub fn heuristics(&self) -> &HeuristicsConfig {
        &self.walk.opts.heuristics
    }

    /// The container's own location.
    pub fn location(&self) -> &str {
        self.location
    }

    /// The container's declared name (attachment or member name), if any.
    pub fn container_name(&self) -> Option<&str> {
        self.name
    }

    /// The container's true type.
    pub fn container_type(&self) -> FileType {
        self.file_type
    }

    /// True once the walk must end (visitor stop, global limit): readers stop.
    pub fn done(&self) -> bool {
        self.walk.stop
    }

    /// The location a member with `segment` gets.
    pub fn child_location(&self, segment: &str) -> String {
        join(self.location, segment)
    }

    /// How many more bytes one member may take: the object limit, or what is
    /// left of the total.
    pub fn room(&self) -> u64 {
        let b = &self.walk.opts.budget;
        b.max_object_size.min(
            b.max_total_size
                .saturating_sub(self.walk.summary.decoded_bytes),
        )
    }

    /// Checks depth, object count and time before a member is decoded. `false`:
    /// do not decode it (the finding is reported).
    fn admit(&mut self, segment: &str) -> bool {
        if self.walk.stop {
            return false;
        }
        let loc = join(self.location, segment);
        if self.depth + 1 > self.walk.opts.budget.max_depth {
            if !self.depth_reported {
                self.depth_reported = true;
                let d = self.walk.opts.budget.max_depth;
                self.walk.limit(
                    Limit::MaxRecursion,
                    &loc,
                    format!("nested deeper than {d} levels; not opened"),
                );
            }
            return false;
        }
        if self.walk.summary.objects >= self.walk.opts.budget.max_objects {
            let n = self.walk.opts.budget.max_objects;
            self.walk.limit(
                Limit::MaxFiles,
                &loc,
                format!("more than {n} objects; the rest is not scanned"),
            );
            return false;
        }
        if self.walk.summary.decoded_bytes >= self.walk.opts.budget.max_total_size {
            self.total_exceeded(&loc);
            return false;
        }
        !self.walk.out_of_time(&loc)
    }

    fn total_exceeded(&mut self, loc: &str) {
        let n = self.walk.opts.budget.max_total_size;
        self.walk.limit(
            Limit::MaxScanSize,
            loc,
            format!("more than {n} decoded bytes; the rest is not scanned"),
        );
    }

    /// Hands over a member whose bytes are borrowed (a stored member). Bytes
    /// beyond the object limit are cut off and reported.
    pub fn child(&mut self, meta: ChildMeta, data: &[u8]) -> Flow {
        if !self.admit(&meta.segment) {
            return self.flow();
        }
        let room = self.room();
        let data = if data.len() as u64 > room {
            self.over_size(&meta.segment, data.len() as u64);
            &data[..room as usize]
        } else {
            data
        };
        self.emit(meta, Cow::Borrowed(data))
    }

    /// Hands over a member already decoded into memory. Same limits as [`child`](Self::child).
    pub fn child_owned(&mut self, meta: ChildMeta, mut data: Vec<u8>) -> Flow {
        if !self.admit(&meta.segment) {
            return self.flow();
        }
        let room = self.room();
        if data.len() as u64 > room {
            self.over_size(&meta.segment, data.len() as u64);
            data.truncate(room as usize);
        }
        self.emit(meta, Cow::Owned(data))
    }

    /// Hands over a member read from a stream (a decompressor). Reads at most
    /// [`room`](Self::room) bytes; stops early when the expansion ratio against
    /// `packed` (the compressed size, when known) exceeds the limit, or on time.
    /// A read error keeps what was read and reports the container as broken.
    pub fn child_reader(&mut self, meta: ChildMeta, r: &mut dyn Read, packed: Option<u64>) -> Flow {
        if !self.admit(&meta.segment) {
            return self.flow();
        }
        let room = self.room();
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        let max_ratio = self.walk.opts.budget.max_ratio;
        let mut broken: Option<String> = None;
        loop {
            let n = match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            };
            let take = n.min((room - buf.len() as u64) as usize);
            buf.extend_from_slice(&chunk[..take]);
            if take < n {
                self.over_size(&meta.segment, room + 1);
                break;
            }
            let out = buf.len() as u64;
            if let Some(p) = packed {
                if out >= budget::RATIO_MIN_OUTPUT && out / p.max(1) > max_ratio {
                    let loc = join(self.location, &meta.segment);
                    self.walk.limit(
                        Limit::MaxCompressionRatio,
                        &loc,
                        format!("{p} packed bytes expand to more than {out}; decoding stopped"),
                    );
                    break;
                }
            }
            if buf.len() % (1 << 20) < READ_CHUNK && self.walk.out_of_time(self.location) {
                break;
            }
        }
        if let Some(reason) = broken {
            let what = self.file_type.name();
            self.broken(what, &format!("{}: {reason}", meta.segment));
        }
        if buf.is_empty() && self.walk.stop {
            return Flow::Stop;
        }
        self.emit(meta, Cow::Owned(buf))
    }

    fn over_size(&mut self, segment: &str, size: u64) {
        let loc = join(self.location, segment);
        if self.walk.summary.decoded_bytes + size > self.walk.opts.budget.max_total_size
            && size <= self.walk.opts.budget.max_object_size
        {
            self.total_exceeded(&loc);
            return;
        }
        let n = self.walk.opts.budget.max_object_size;
        self.walk.limit(
            Limit::MaxFileSize,
            &loc,
            format!("larger than {n} bytes; only the first {n} are scanned"),
        );
    }

    fn emit(&mut self, meta: ChildMeta, data: Cow<'_, [u8]>) -> Flow {
        // A member that is its container again (a text part that looks like a
        // message but has no headers, a zip quine) was scanned already; opening
        // it again would only loop until the depth limit.
        if data.trim_ascii() == self.data.trim_ascii() {
            return self.flow();
        }
        self.walk.summary.decoded_bytes += data.len() as u64;
        let mut ft = kind::true_type(&data);
        // A member opened as mail is typed as mail (target 4 signatures apply).
        if meta.kind == Some(Kind::Mail) && !matches!(ft, FileType::Mail | FileType::Mhtml) {
            ft = FileType::Mail;
        }
        let mut obj = ScanObject {
            data,
            file_type: ft,
            container: Some(self.file_type),
            name: meta.name,
            declared_type: meta.declared_type,
            location: join(self.location, &meta.segment),
            depth: self.depth + 1,
            text: None,
            links: Vec::new(),
        };
        heur::name_checks(self.walk.opts, &obj, &mut |f| self.walk.report(f));
        self.walk.enrich(&mut obj, meta.text);
        self.walk.process(obj, meta.kind);
        self.flow()
    }

    fn flow(&self) -> Flow {
        if self.walk.stop {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// Reports a heuristic finding at the container (`segment` `None`) or at one
    /// member. `name` is the full dotted name (`Heuristics.Encrypted.Zip`).
    pub fn heuristic(&mut self, name: &str, segment: Option<&str>, detail: &str) -> Flow {
        let loc = match segment {
            Some(s) => join(self.location, s),
            None => self.location.to_string(),
        };
        self.walk.report(Finding::heuristic(name, loc, detail));
        self.flow()
    }

    /// Whether decoded text is wanted ([`DecodeOptions::text`]): readers may skip
    /// charset decoding when it is not.
    pub fn wants_text(&self) -> bool {
        self.walk.opts.text
    }

    /// Reports a limit a reader enforces itself (multipart nesting, ...) at the
    /// container or one member: once per walk, recorded in [`Summary::limits`];
    /// `MaxFiles`, `MaxScanSize` and `MaxScanTime` end the walk.
    pub fn limit(&mut self, limit: Limit, segment: Option<&str>, detail: &str) -> Flow {
        let loc = match segment {
            Some(s) => join(self.location, s),
            None => self.location.to_string(),
        };
        self.walk.limit(limit, &loc, detail.to_string());
        self.flow()
    }

    /// Reports links found in the container (they belong to the container's object).
    pub fn links(&mut self, links: Vec<Link>) {
        if !links.is_empty() {
            self.walk.visitor.links(self.location, links);
        }
    }

    /// Reports content this reader cannot decode (an unsupported compression
    /// method, an unknown encoding): `Heuristics.Unscannable.<what>`. Always on:
    /// content we did not look at is never reported as clean.
    pub fn unscannable(&mut self, what: &str, segment: Option<&str>, detail: &str) -> Flow {
        self.heuristic(&format!("Heuristics.Unscannable.{what}"), segment, detail)
    }

    /// A member this reader cannot decode (a compression method we lack, an
    /// encrypted member): its name still goes through the name heuristics
    /// (`invoice.pdf.exe` is worth knowing about unopened), then
    /// `Heuristics.Unscannable.<what>` is reported at its location.
    pub fn member_unscannable(&mut self, what: &str, meta: &ChildMeta, detail: &str) -> Flow {
        let obj = ScanObject {
            data: Cow::Borrowed(&[]),
            file_type: FileType::Binary,
            container: Some(self.file_type),
            name: meta.name.clone(),
            declared_type: meta.declared_type.clone(),
            location: join(self.location, &meta.segment),
            depth: self.depth + 1,
            text: None,
            links: Vec::new(),
        };
        heur::name_checks(self.walk.opts, &obj, &mut |f| self.walk.report(f));
        self.unscannable(what, Some(&meta.segment), detail)
    }

    /// Reports an encrypted member or document (`Heuristics.Encrypted.<what>`),
    /// when that heuristic is on.
    pub fn encrypted(&mut self, what: &str, segment: Option<&str>, detail: &str) -> Flow {
        if self.walk.opts.heuristics.encrypted {
            self.heuristic(&format!("Heuristics.Encrypted.{what}"), segment, detail)
        } else {
            self.flow()
        }
    }

    /// Reports a container that could not be read to the end
    /// (`Heuristics.Broken.<what>`), when that heuristic is on. What was read
    /// before the damage has been handed over already.
    pub fn broken(&mut self, what: &str, detail: &str) -> Flow {
        if self.walk.opts.heuristics.broken {
            let mut w = String::with_capacity(what.len());
            let mut up = true;
            for c in what.chars().filter(|c| c.is_ascii_alphanumeric()) {
                w.push(if up { c.to_ascii_uppercase() } else { c });
                up = false;
            }
            self.heuristic(&format!("Heuristics.Broken.{w}"), None, detail)
        } else {
            self.flow()
        }
    }
}

/// `parent/segment`, or `segment` at the top.
fn join(parent: &str, segment: &str) -> String {
    if parent.is_empty() {
        segment.to_string()
    } else {
        let mut s = String::with_capacity(parent.len() + 1 + segment.len());
        s.push_str(parent);
        s.push('/');
        s.push_str(segment);
        s
    }
}
