//! Compilation: every test of every rule becomes a numbered leaf; every
//! keyword over one field goes into one aho-corasick automaton and every
//! regex (and glob, address and domain pattern) over one field into one
//! `RegexSet`, each pattern mapped back to its leaf.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use ipnet::IpNet;
use mxguard_decode::FileType;
use regex::{RegexSet, RegexSetBuilder};

use super::config::{
    ActionKind, ActionSpec, AttachmentTest, AuthSettings, AuthTest, Bounds, Condition, Direction,
    ListKind, NamedList, PhishCheck, Policy, PolicyConfig, Rule, Test, TextField, TextTest,
    UrlTest,
};
use super::error::{line_of, ConfigError, ErrorKind};
use super::fold::Folder;

/// Most variants one keyword expands to through synonyms.
pub const MAX_KEYWORD_VARIANTS: usize = 64;
/// Most patterns (keyword variants or regexes) over one field.
pub const MAX_PATTERNS_PER_FIELD: usize = 200_000;
/// Most rules in one policy config.
pub const MAX_RULES: usize = 10_000;
/// Compiled size limit of one field's regex set (bytes).
pub const REGEX_SET_SIZE_LIMIT: usize = 64 << 20;
/// Lazy DFA cache limit of one field's regex set (bytes, per thread).
pub const REGEX_DFA_SIZE_LIMIT: usize = 8 << 20;

pub(crate) type LeafId = u32;

/// A fixed-size bit set over leaf ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitSet(Vec<u64>);

impl BitSet {
    pub(crate) fn new(n: usize) -> BitSet {
        BitSet(vec![0; n.div_ceil(64)])
    }
    pub(crate) fn set(&mut self, i: LeafId) {
        let i = i as usize;
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    pub(crate) fn get(&self, i: LeafId) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub(crate) fn clear(&mut self) {
        self.0.iter_mut().for_each(|w| *w = 0);
    }
}

/// A keyword test's leaf and how many distinct keywords it needs.
#[derive(Debug, Clone)]
pub(crate) struct KwLeaf {
    pub leaf: LeafId,
    pub min: usize,
}

/// All matchers over one field.
#[derive(Debug, Default)]
pub(crate) struct FieldMatcher {
    /// Folded keyword variants; pattern id → (keyword leaf index, keyword index).
    pub ac: Option<AhoCorasick>,
    pub ac_map: Vec<Vec<(u32, u32)>>,
    pub kw_leaves: Vec<KwLeaf>,
    /// Regexes over the value as it is.
    pub raw: Option<RegexSet>,
    pub raw_map: Vec<LeafId>,
    /// Regexes over the folded value.
    pub folded: Option<RegexSet>,
    pub folded_map: Vec<LeafId>,
    /// Lowercased, trimmed values → leaves.
    pub equals: HashMap<String, Vec<LeafId>>,
}

impl FieldMatcher {
    pub(crate) fn needs_fold(&self) -> bool {
        self.ac.is_some() || self.folded.is_some()
    }
}

/// Collects one field's patterns before building.
#[derive(Default)]
struct FieldBuilder {
    kw_patterns: HashMap<String, usize>,
    kw_list: Vec<String>,
    ac_map: Vec<Vec<(u32, u32)>>,
    kw_leaves: Vec<KwLeaf>,
    raw: Vec<String>,
    raw_map: Vec<LeafId>,
    folded: Vec<String>,
    folded_map: Vec<LeafId>,
    equals: HashMap<String, Vec<LeafId>>,
}

impl FieldBuilder {
    fn patterns(&self) -> usize {
        self.kw_list.len() + self.raw.len() + self.folded.len()
    }

    fn build(self, field: &str, errors: &mut Vec<ConfigError>) -> FieldMatcher {
        let mut m = FieldMatcher {
            ac_map: self.ac_map,
            kw_leaves: self.kw_leaves,
            raw_map: self.raw_map,
            folded_map: self.folded_map,
            equals: self.equals,
            ..Default::default()
        };
        if !self.kw_list.is_empty() {
            match AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&self.kw_list)
            {
                Ok(ac) => m.ac = Some(ac),
                Err(e) => errors.push(ConfigError::new(
                    field,
                    ErrorKind::Limit(format!("keyword automaton: {e}")),
                )),
            }
        }
        for (pats, slot) in [(self.raw, &mut m.raw), (self.folded, &mut m.folded)] {
            if pats.is_empty() {
                continue;
            }
            match RegexSetBuilder::new(&pats)
                .size_limit(REGEX_SET_SIZE_LIMIT)
                .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
                .build()
            {
                Ok(set) => *slot = Some(set),
                Err(e) => errors.push(ConfigError::new(
                    field,
                    ErrorKind::Limit(format!(
                        "the {} regexes over this field: {}",
                        pats.len(),
                        e.to_string().lines().last().unwrap_or("")
                    )),
                )),
            }
        }
        m
    }
}

/// What a leaf tests, for the leaves not set by a field matcher.
#[derive(Debug)]
pub(crate) enum LeafKind {
    /// Set by the field matchers.
    Text,
    /// Set by the field matchers of one item (attachment, URL, recipient).
    Item,
    HeaderExists {
        name: String,
        want: bool,
    },
    Attachment(AttLeaf),
    Url(UrlLeaf),
    ClientIp(Vec<IpNet>),
    Size(Bounds),
    Phishing(PhishCheck),
    Auth(AuthTest),
    /// Zones or listing rule names, lowercase; `*` any.
    Listed(ListKind, Vec<String>),
}

#[derive(Debug)]
pub(crate) struct AttLeaf {
    /// Item leaves (name globs, name regexes, declared type globs) that
    /// must all be set for the attachment.
    pub items: Vec<LeafId>,
    pub true_types: Vec<FileType>,
    pub size: Option<Bounds>,
    pub inside_archives: bool,
    pub count: Option<Bounds>,
    pub login_form: Option<bool>,
}

#[derive(Debug)]
pub(crate) struct UrlLeaf {
    pub items: Vec<LeafId>,
    pub ip_literal: Option<bool>,
    pub shortener: Option<bool>,
    pub credentials: Option<bool>,
    pub count: Option<Bounds>,
}

/// A compiled condition.
#[derive(Debug)]
pub(crate) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    /// A message-level leaf.
    Leaf(LeafId),
    /// One recipient of the policy's share has all these leaves.
    Rcpt(Vec<LeafId>),
    /// One recipient of the policy's share has this direction.
    Direction(Direction),
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub name: String,
    pub group: String,
    pub score: Option<f64>,
    pub action: Option<ActionSpec>,
    pub cond: Cond,
    pub per_listing: Option<ListKind>,
}

/// Address patterns compiled into one set (any pattern matches).
#[derive(Debug, Default)]
pub(crate) struct AddressSet {
    pub set: Option<RegexSet>,
}

impl AddressSet {
    pub(crate) fn matches(&self, address: &str) -> bool {
        self.set.as_ref().is_some_and(|s| s.is_match(address))
    }
}

#[derive(Debug)]
pub(crate) struct CompiledPolicyEntry {
    pub policy: Policy,
    pub recipients: AddressSet,
    pub allow: AddressSet,
    pub deny: AddressSet,
    /// Indices into `CompiledPolicy::rules`, in config order.
    pub rules: Vec<usize>,
}

/// A policy config compiled for evaluation: immutable, `Send + Sync`;
/// compile once, share behind an `Arc`, evaluate from many threads.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) leaves: Vec<LeafKind>,
    /// Matchers over message-level text fields.
    pub(crate) fields: BTreeMap<TextField, FieldMatcher>,
    pub(crate) rcpt: FieldMatcher,
    pub(crate) att_name: FieldMatcher,
    pub(crate) att_type: FieldMatcher,
    pub(crate) url_full: FieldMatcher,
    pub(crate) url_host: FieldMatcher,
    pub(crate) url_path: FieldMatcher,
    /// Leaves of the attachment tests (in leaf order), of the URL tests.
    pub(crate) att_leaves: Vec<LeafId>,
    pub(crate) url_leaves: Vec<LeafId>,
    pub(crate) policies: Vec<CompiledPolicyEntry>,
    pub(crate) default_policy: CompiledPolicyEntry,
    pub(crate) shorteners: HashSet<String>,
    pub(crate) brands: Vec<super::phishing::Brand>,
    pub(crate) local_domains: Vec<String>,
    /// Which phishing checks any rule uses.
    pub(crate) phish_used: Vec<PhishCheck>,
    /// Points and switches of the listing rules (`[auth]`).
    pub(crate) auth: AuthSettings,
}

/// File type names a `true_type` test accepts.
const FILE_TYPES: &[FileType] = &[
    FileType::Binary,
    FileType::Text,
    FileType::Html,
    FileType::HtmlUtf16,
    FileType::Mail,
    FileType::Mhtml,
    FileType::Pe,
    FileType::Elf,
    FileType::MachO,
    FileType::Ole2,
    FileType::Pdf,
    FileType::Graphics,
    FileType::Flash,
    FileType::Java,
    FileType::Internal,
    FileType::Zip,
    FileType::Gzip,
    FileType::Bzip2,
    FileType::Xz,
    FileType::SevenZ,
    FileType::Rar,
    FileType::Cab,
    FileType::Tar,
    FileType::Rtf,
    FileType::Ignored,
    FileType::Other,
];

/// The plain reason a regex does not parse (`unclosed group`).
fn regex_error(e: regex_syntax::Error) -> String {
    match e {
        regex_syntax::Error::Parse(e) => e.kind().to_string(),
        regex_syntax::Error::Translate(e) => e.kind().to_string(),
        e => e.to_string(),
    }
}

/// Parses a regex (flags included) and prints it back with ASCII word
/// boundaries: Unicode `\b` stops the lazy DFA on the first non-ASCII
/// byte and leaves the slow PikeVM to finish the search (measured: 40% of
/// evaluation time on the SpamAssassin corpus); ASCII boundaries keep
/// every set on the DFA. `\w`, `\d`, `\s` and classes stay Unicode.
fn prepared_regex(pattern: &str) -> Result<String, String> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(regex_error)?;
    Ok(ascii_words(&hir).to_string())
}

fn ascii_words(h: &regex_syntax::hir::Hir) -> regex_syntax::hir::Hir {
    use regex_syntax::hir::{Capture, Hir, HirKind, Look, Repetition};
    match h.kind() {
        HirKind::Look(l) => Hir::look(match l {
            Look::WordUnicode => Look::WordAscii,
            Look::WordUnicodeNegate => Look::WordAsciiNegate,
            Look::WordStartUnicode => Look::WordStartAscii,
            Look::WordEndUnicode => Look::WordEndAscii,
            Look::WordStartHalfUnicode => Look::WordStartHalfAscii,
            Look::WordEndHalfUnicode => Look::WordEndHalfAscii,
            other => *other,
        }),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            min: r.min,
            max: r.max,
            greedy: r.greedy,
            sub: Box::new(ascii_words(&r.sub)),
        }),
        HirKind::Capture(c) => Hir::capture(Capture {
            index: c.index,
            name: c.name.clone(),
            sub: Box::new(ascii_words(&c.sub)),
        }),
        HirKind::Concat(v) => Hir::concat(v.iter().map(ascii_words).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(ascii_words).collect()),
        _ => h.clone(),
    }
}

/// Regex text for a glob (`*` any run, `?` one character), anchored to a
/// whole line.
fn glob_regex(glob: &str) -> String {
    let mut out = String::from("(?i)^");
    for c in glob.chars() {
        match c {
            '*' => out.push_str("[^\\n]*"),
            '?' => out.push_str("[^\\n]"),
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out.push('$');
    out
}

/// Regex text for an address pattern: `@dom` or `dom` (that domain and
/// its subdomains), a glob with `*`/`?`, or an exact address.
pub(crate) fn address_regex(pattern: &str) -> Result<String, String> {
    let p = pattern.trim().trim_start_matches('<').trim_end_matches('>');
    if p.is_empty() {
        return Err("empty address pattern".into());
    }
    if p.contains(char::is_whitespace) {
        return Err(format!("`{p}` holds whitespace"));
    }
    if p.contains(['*', '?']) {
        return Ok(glob_regex(p));
    }
    match p.strip_prefix('@') {
        Some(dom) => Ok(domain_regex(dom, true)),
        None if !p.contains('@') => Ok(domain_regex(p, true)),
        None => Ok(format!("(?i)^{}$", regex::escape(p))),
    }
}

/// Regex text for a domain and its subdomains, over an address (`at`) or
/// a host.
fn domain_regex(domain: &str, at: bool) -> String {
    let d = regex::escape(domain.trim_end_matches('.'));
    if at {
        format!("(?i)^[^@\\n]*@(?:[^@\\n]*\\.)?{d}$")
    } else {
        format!("(?i)^(?:[^\\n]*\\.)?{d}$")
    }
}

/// Compiles address patterns (lists expanded) into one set.
fn address_set(values: &[(String, String)], errors: &mut Vec<ConfigError>) -> AddressSet {
    let mut pats = Vec::new();
    for (v, path) in values {
        match address_regex(v) {
            Ok(r) => pats.push(r),
            Err(e) => errors.push(ConfigError::invalid(path.clone(), e)),
        }
    }
    if pats.is_empty() {
        return AddressSet::default();
    }
    match RegexSetBuilder::new(&pats)
        .size_limit(REGEX_SET_SIZE_LIMIT)
        .build()
    {
        Ok(set) => AddressSet { set: Some(set) },
        Err(e) => {
            errors.push(ConfigError::new(
                values[0].1.clone(),
                ErrorKind::Limit(e.to_string()),
            ));
            AddressSet::default()
        }
    }
}

struct Compiler<'c> {
    cfg: &'c PolicyConfig,
    lists: HashMap<&'c str, &'c NamedList>,
    synonyms: HashMap<String, Vec<String>>,
    errors: Vec<ConfigError>,
    leaves: Vec<LeafKind>,
    fields: BTreeMap<TextField, FieldBuilder>,
    rcpt: FieldBuilder,
    att_name: FieldBuilder,
    att_type: FieldBuilder,
    url_full: FieldBuilder,
    url_host: FieldBuilder,
    url_path: FieldBuilder,
    folder: Folder,
    phish_used: Vec<PhishCheck>,
}

/// Which item field a pattern goes to.
#[derive(Clone, Copy)]
enum ItemField {
    Rcpt,
    AttName,
    AttType,
    UrlFull,
    UrlHost,
    UrlPath,
}

impl<'c> Compiler<'c> {
    fn leaf(&mut self, kind: LeafKind) -> LeafId {
        self.leaves.push(kind);
        (self.leaves.len() - 1) as LeafId
    }

    fn item(&mut self, f: ItemField) -> &mut FieldBuilder {
        match f {
            ItemField::Rcpt => &mut self.rcpt,
            ItemField::AttName => &mut self.att_name,
            ItemField::AttType => &mut self.att_type,
            ItemField::UrlFull => &mut self.url_full,
            ItemField::UrlHost => &mut self.url_host,
            ItemField::UrlPath => &mut self.url_path,
        }
    }

    /// Values with `list:name` entries replaced by the list's values, each
    /// with the key path it came from.
    fn expand(&mut self, values: &[String], path: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match v.strip_prefix("list:") {
                Some(name) => match self.lists.get(name.trim()) {
                    Some(list) => out.extend(
                        list.values
                            .iter()
                            .enumerate()
                            .map(|(j, x)| (x.clone(), format!("{}.values[{j}]", list.path))),
                    ),
                    None => self.errors.push(ConfigError::new(
                        p,
                        ErrorKind::Unknown {
                            what: "list",
                            name: name.trim().to_string(),
                        },
                    )),
                },
                None => out.push((v.clone(), p)),
            }
        }
        out
    }

    /// Adds a regex (validated alone for a precise error) to a builder.
    fn add_regex(b: &mut FieldBuilder, folded: bool, pattern: String, leaf: LeafId) {
        if folded {
            b.folded.push(pattern);
            b.folded_map.push(leaf);
        } else {
            b.raw.push(pattern);
            b.raw_map.push(leaf);
        }
    }

    fn checked_regex(&mut self, pattern: &str, path: &str, case_sensitive: bool) -> Option<String> {
        let flags = if case_sensitive { "(?m)" } else { "(?mi)" };
        match prepared_regex(&format!("{flags}{pattern}")) {
            Ok(p) => Some(p),
            Err(e) => {
                self.errors
                    .push(ConfigError::new(path, ErrorKind::Regex(e)));
                None
            }
        }
    }

    /// Folded variants of a keyword, synonyms expanded (each word of the
    /// folded keyword by its variants), at most [`MAX_KEYWORD_VARIANTS`].
    fn keyword_variants(&mut self, kw: &str, path: &str) -> Vec<String> {
        let folded = self.folder.fold(kw);
        let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
        if words.is_empty() {
            self.errors.push(ConfigError::invalid(
                path,
                format!("`{kw}` has no letters or digits to match"),
            ));
            return Vec::new();
        }
        let mut variants: Vec<String> = vec![String::new()];
        for w in words {
            let mut opts = vec![w.to_string()];
            if let Some(s) = self.synonyms.get(w) {
                opts.extend(s.iter().cloned());
            }
            let mut next = Vec::new();
            for v in &variants {
                for o in &opts {
                    next.push(if v.is_empty() {
                        o.clone()
                    } else {
                        format!("{v} {o}")
                    });
                }
            }
            if next.len() > MAX_KEYWORD_VARIANTS {
                self.errors.push(ConfigError::new(
                    path,
                    ErrorKind::Limit(format!(
                        "`{kw}` expands to more than {MAX_KEYWORD_VARIANTS} variants through synonyms"
                    )),
                ));
                return Vec::new();
            }
            variants = next;
        }
        variants.sort();
        variants.dedup();
        variants
    }

    /// Adds a text test's operators to builder `b`; returns the leaves
    /// (all must hold).
    fn text_ops(
        &mut self,
        test: &TextTest,
        path: &str,
        item: Option<ItemField>,
        field: &TextField,
    ) -> Vec<LeafId> {
        let mut leaves = Vec::new();
        let mut b = std::mem::take(match item {
            Some(f) => self.item(f),
            None => self.fields.entry(field.clone()).or_default(),
        });
        let is_item = item.is_some();
        let fresh = |me: &mut Self| {
            me.leaf(if is_item {
                LeafKind::Item
            } else {
                LeafKind::Text
            })
        };
        if !test.equals.is_empty() {
            let leaf = fresh(self);
            for (v, _) in self.expand(&test.equals, &format!("{path}.equals")) {
                b.equals
                    .entry(v.trim().to_lowercase())
                    .or_default()
                    .push(leaf);
            }
            leaves.push(leaf);
        }
        if !test.keywords.is_empty() {
            let leaf = fresh(self);
            let kw_leaf = b.kw_leaves.len() as u32;
            let expanded = self.expand(&test.keywords, &format!("{path}.keywords"));
            let mut n = 0u32;
            for (kw, kp) in &expanded {
                let variants = self.keyword_variants(kw, kp);
                if variants.is_empty() {
                    continue;
                }
                for v in variants {
                    let pat = if test.whole_words {
                        format!(" {v} ")
                    } else {
                        v
                    };
                    let id = match b.kw_patterns.get(&pat) {
                        Some(id) => *id,
                        None => {
                            b.kw_list.push(pat.clone());
                            b.ac_map.push(Vec::new());
                            b.kw_patterns.insert(pat, b.kw_list.len() - 1);
                            b.kw_list.len() - 1
                        }
                    };
                    if !b.ac_map[id].contains(&(kw_leaf, n)) {
                        b.ac_map[id].push((kw_leaf, n));
                    }
                }
                n += 1;
            }
            if test.min > n as usize && n > 0 {
                self.errors.push(ConfigError::invalid(
                    format!("{path}.min"),
                    format!("{} is more than the {n} keywords given", test.min),
                ));
            }
            b.kw_leaves.push(KwLeaf {
                leaf,
                min: test.min,
            });
            leaves.push(leaf);
        }
        if !test.regex.is_empty() {
            let leaf = fresh(self);
            for (i, r) in test.regex.iter().enumerate() {
                if let Some(p) =
                    self.checked_regex(r, &format!("{path}.regex[{i}]"), test.case_sensitive)
                {
                    Self::add_regex(&mut b, test.fold, p, leaf);
                }
            }
            leaves.push(leaf);
        }
        if !test.addresses.is_empty() {
            let leaf = fresh(self);
            for (v, p) in self.expand(&test.addresses, &format!("{path}.addresses")) {
                match address_regex(&v) {
                    Ok(r) => Self::add_regex(&mut b, false, r, leaf),
                    Err(e) => self.errors.push(ConfigError::invalid(p, e)),
                }
            }
            leaves.push(leaf);
        }
        if b.patterns() > MAX_PATTERNS_PER_FIELD {
            self.errors.push(ConfigError::new(
                path,
                ErrorKind::Limit(format!(
                    "more than {MAX_PATTERNS_PER_FIELD} patterns over one field"
                )),
            ));
        }
        *match item {
            Some(f) => self.item(f),
            None => self.fields.entry(field.clone()).or_default(),
        } = b;
        leaves
    }

    /// One pattern list of an item field (globs or regexes) as one leaf.
    fn item_patterns(
        &mut self,
        f: ItemField,
        values: &[(String, String)],
        to_regex: impl Fn(&str) -> Result<String, String>,
    ) -> LeafId {
        let leaf = self.leaf(LeafKind::Item);
        for (v, p) in values {
            match to_regex(v) {
                Ok(r) => match prepared_regex(&r) {
                    Ok(r) => {
                        let b = self.item(f);
                        Self::add_regex(b, false, r, leaf);
                    }
                    Err(e) => self
                        .errors
                        .push(ConfigError::new(p.clone(), ErrorKind::Regex(e))),
                },
                Err(e) => self.errors.push(ConfigError::invalid(p.clone(), e)),
            }
        }
        leaf
    }

    fn indexed(values: &[String], path: &str) -> Vec<(String, String)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), format!("{path}[{i}]")))
            .collect()
    }

    fn attachment(&mut self, t: &AttachmentTest, path: &str) -> LeafId {
        let mut items = Vec::new();
        if !t.name.is_empty() {
            let names = self.expand(&t.name, &format!("{path}.name"));
            items.push(self.item_patterns(ItemField::AttName, &names, |g| Ok(glob_regex(g))));
        }
        if !t.name_regex.is_empty() {
            let pats = Self::indexed(&t.name_regex, &format!("{path}.name_regex"));
            items.push(self.item_patterns(ItemField::AttName, &pats, |r| Ok(format!("(?i){r}"))));
        }
        if !t.declared_type.is_empty() {
            let types = self.expand(&t.declared_type, &format!("{path}.declared_type"));
            items.push(self.item_patterns(ItemField::AttType, &types, |g| Ok(glob_regex(g))));
        }
        let mut true_types = Vec::new();
        for (v, p) in self.expand(&t.true_type, &format!("{path}.true_type")) {
            let v = v.trim().to_ascii_lowercase();
            let v = match v.as_str() {
                "exe" | "dll" => "pe",
                "7zip" => "7z",
                "mach-o" => "macho",
                "doc" | "xls" | "ppt" | "msi" => "ole2",
                x => x,
            };
            match FILE_TYPES.iter().find(|f| f.name() == v) {
                Some(f) => true_types.push(*f),
                None => {
                    let names: Vec<&str> = FILE_TYPES.iter().map(|f| f.name()).collect();
                    self.errors.push(ConfigError::invalid(
                        p,
                        format!(
                            "unknown file type `{v}`, expected one of {}",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        self.leaf(LeafKind::Attachment(AttLeaf {
            items,
            true_types,
            size: t.size,
            inside_archives: t.inside_archives,
            count: t.count,
            login_form: t.login_form,
        }))
    }

    fn url(&mut self, t: &UrlTest, path: &str) -> LeafId {
        let mut items = Vec::new();
        if !t.domain.is_empty() {
            let doms = self.expand(&t.domain, &format!("{path}.domain"));
            items.push(self.item_patterns(ItemField::UrlHost, &doms, |d| {
                let d = d.trim().trim_start_matches("*.").trim_start_matches('.');
                if d.is_empty() || d.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
                    Err(format!("`{d}` is not a domain"))
                } else {
                    Ok(domain_regex(&d.to_lowercase(), false))
                }
            }));
        }
        if !t.regex.is_empty() {
            let pats = Self::indexed(&t.regex, &format!("{path}.regex"));
            items.push(self.item_patterns(ItemField::UrlFull, &pats, |r| Ok(format!("(?i){r}"))));
        }
        if !t.path_regex.is_empty() {
            let pats = Self::indexed(&t.path_regex, &format!("{path}.path_regex"));
            items.push(self.item_patterns(ItemField::UrlPath, &pats, |r| Ok(format!("(?i){r}"))));
        }
        self.leaf(LeafKind::Url(UrlLeaf {
            items,
            ip_literal: t.ip_literal,
            shortener: t.shortener,
            credentials: t.credentials,
            count: t.count,
        }))
    }

    fn condition(&mut self, c: &Condition) -> Cond {
        match c {
            Condition::All(v) => Cond::All(v.iter().map(|x| self.condition(x)).collect()),
            Condition::Any(v) => Cond::Any(v.iter().map(|x| self.condition(x)).collect()),
            Condition::Not(x) => Cond::Not(Box::new(self.condition(x))),
            Condition::Test { path, test } => self.test(test, path),
        }
    }

    fn test(&mut self, test: &Test, path: &str) -> Cond {
        match test {
            Test::Text {
                field: TextField::Recipient,
                test,
            } => {
                Cond::Rcpt(self.text_ops(test, path, Some(ItemField::Rcpt), &TextField::Recipient))
            }
            Test::Text { field, test } => {
                let mut leaves = Vec::new();
                if let (TextField::Header(name), Some(want)) = (field, test.exists) {
                    leaves.push(self.leaf(LeafKind::HeaderExists {
                        name: name.clone(),
                        want,
                    }));
                }
                leaves.extend(self.text_ops(test, path, None, field));
                all_of(leaves)
            }
            Test::ClientIp(cidrs) => {
                let mut nets = Vec::new();
                for (v, p) in self.expand(cidrs, &format!("{path}.cidr")) {
                    let v = v.trim();
                    let parsed = v
                        .parse::<IpNet>()
                        .or_else(|_| v.parse::<IpAddr>().map(IpNet::from));
                    match parsed {
                        Ok(n) => nets.push(n.trunc()),
                        Err(_) => self.errors.push(ConfigError::invalid(
                            p,
                            format!("`{v}` is not an IP address or CIDR network"),
                        )),
                    }
                }
                Cond::Leaf(self.leaf(LeafKind::ClientIp(nets)))
            }
            Test::Direction(d) => Cond::Direction(*d),
            Test::Attachment(t) => Cond::Leaf(self.attachment(t, path)),
            Test::Url(t) => Cond::Leaf(self.url(t, path)),
            Test::Size(b) => Cond::Leaf(self.leaf(LeafKind::Size(*b))),
            Test::Phishing(c) => {
                if !self.phish_used.contains(c) {
                    self.phish_used.push(*c);
                }
                Cond::Leaf(self.leaf(LeafKind::Phishing(*c)))
            }
            Test::Auth(t) => Cond::Leaf(self.leaf(LeafKind::Auth(t.clone()))),
            Test::Listed(kind, names) => {
                Cond::Leaf(self.leaf(LeafKind::Listed(*kind, names.clone())))
            }
        }
    }

    fn policy_entry(&mut self, p: &Policy, rules: &[CompiledRule]) -> CompiledPolicyEntry {
        let recipients = self.expand(&p.recipients, &format!("{}.recipients", p.path));
        let allow = self.expand(&p.allow_senders, &format!("{}.allow_senders", p.path));
        let deny = self.expand(&p.deny_senders, &format!("{}.deny_senders", p.path));
        let known_groups: HashSet<&str> = rules.iter().map(|r| r.group.as_str()).collect();
        let mut chosen: Vec<usize> = Vec::new();
        let mut wanted: HashSet<usize> = HashSet::new();
        if p.rules.is_none() && p.groups.is_none() {
            wanted.extend(0..rules.len());
        }
        if let Some(names) = &p.rules {
            for (i, n) in names.iter().enumerate() {
                match rules.iter().position(|r| &r.name == n) {
                    Some(idx) => {
                        wanted.insert(idx);
                    }
                    None if self.cfg.broken_rules.contains(n) => {}
                    None => self.errors.push(ConfigError::new(
                        format!("{}.rules[{i}]", p.path),
                        ErrorKind::Unknown {
                            what: "rule",
                            name: n.clone(),
                        },
                    )),
                }
            }
        }
        if let Some(groups) = &p.groups {
            for (i, g) in groups.iter().enumerate() {
                if !known_groups.contains(g.as_str()) {
                    self.errors.push(ConfigError::new(
                        format!("{}.groups[{i}]", p.path),
                        ErrorKind::Unknown {
                            what: "rule group",
                            name: g.clone(),
                        },
                    ));
                }
                wanted.extend(
                    rules
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| &r.group == g)
                        .map(|(i, _)| i),
                );
            }
        }
        for (i, n) in p.exclude_rules.iter().enumerate() {
            match rules.iter().position(|r| &r.name == n) {
                Some(idx) => {
                    wanted.remove(&idx);
                }
                None if self.cfg.broken_rules.contains(n) => {}
                None => self.errors.push(ConfigError::new(
                    format!("{}.exclude_rules[{i}]", p.path),
                    ErrorKind::Unknown {
                        what: "rule",
                        name: n.clone(),
                    },
                )),
            }
        }
        chosen.extend((0..rules.len()).filter(|i| wanted.contains(i)));
        CompiledPolicyEntry {
            policy: p.clone(),
            recipients: address_set(&recipients, &mut self.errors),
            allow: address_set(&allow, &mut self.errors),
            deny: address_set(&deny, &mut self.errors),
            rules: chosen,
        }
    }
}

fn all_of(mut leaves: Vec<LeafId>) -> Cond {
    if leaves.len() == 1 {
        Cond::Leaf(leaves.pop().unwrap_or_default())
    } else {
        Cond::All(leaves.into_iter().map(Cond::Leaf).collect())
    }
}

/// Whether a condition has an attachment test outside any `not` (so a
/// `clean` action knows what to remove).
fn positive_attachment(c: &Condition) -> bool {
    match c {
        Condition::All(v) | Condition::Any(v) => v.iter().any(positive_attachment),
        Condition::Not(_) => false,
        Condition::Test { test, .. } => matches!(test, Test::Attachment(_)),
    }
}

impl CompiledPolicy {
    /// Compiles a config: validates what needs the whole config (regexes,
    /// references, limits) and builds the matchers. Every error at once.
    pub fn compile(cfg: &PolicyConfig) -> Result<CompiledPolicy, Vec<ConfigError>> {
        let mut c = Compiler {
            cfg,
            lists: HashMap::new(),
            synonyms: HashMap::new(),
            errors: Vec::new(),
            leaves: Vec::new(),
            fields: BTreeMap::new(),
            rcpt: FieldBuilder::default(),
            att_name: FieldBuilder::default(),
            att_type: FieldBuilder::default(),
            url_full: FieldBuilder::default(),
            url_host: FieldBuilder::default(),
            url_path: FieldBuilder::default(),
            folder: Folder::new(),
            phish_used: Vec::new(),
        };
        for l in &cfg.lists {
            if c.lists.insert(l.name.as_str(), l).is_some() {
                c.errors.push(ConfigError::new(
                    format!("{}.name", l.path),
                    ErrorKind::Duplicate(l.name.clone()),
                ));
            }
        }
        for s in &cfg.synonyms {
            let word = c.folder.fold(&s.word);
            let word = word.trim();
            if word.is_empty() || word.contains(' ') {
                c.errors.push(ConfigError::invalid(
                    format!("{}.word", s.path),
                    format!("`{}` must be one word", s.word),
                ));
                continue;
            }
            let mut vars = Vec::new();
            for (i, v) in s.variants.iter().enumerate() {
                let f = c.folder.fold(v);
                let f = f.trim();
                if f.is_empty() {
                    c.errors.push(ConfigError::invalid(
                        format!("{}.variants[{i}]", s.path),
                        format!("`{v}` has no letters or digits to match"),
                    ));
                } else if f != word {
                    vars.push(f.to_string());
                }
            }
            c.synonyms.entry(word.to_string()).or_default().extend(vars);
        }
        if cfg.rules.len() > MAX_RULES {
            c.errors.push(ConfigError::new(
                format!("{}rules", cfg.prefix_dot()),
                ErrorKind::Limit(format!("more than {MAX_RULES} rules")),
            ));
        }
        let mut names: HashSet<&str> = HashSet::new();
        let mut rules = Vec::with_capacity(cfg.rules.len());
        for r in &cfg.rules {
            if !names.insert(r.name.as_str()) {
                c.errors.push(ConfigError::new(
                    format!("{}.name", r.path),
                    ErrorKind::Duplicate(r.name.clone()),
                ));
            }
            if let Some(a) = &r.action {
                if a.kind == ActionKind::Clean && !positive_attachment(&r.condition) {
                    c.errors.push(ConfigError::invalid(
                        format!("{}.action", r.path),
                        "`clean` needs an attachment test (outside `not`) to know what to remove",
                    ));
                }
            }
            let cond = c.condition(&r.condition);
            rules.push(compiled_rule(r, cond));
        }
        let mut policy_names: HashSet<&str> = HashSet::new();
        let mut policies = Vec::new();
        for p in &cfg.policies {
            if !policy_names.insert(p.name.as_str()) {
                c.errors.push(ConfigError::new(
                    format!("{}.name", p.path),
                    ErrorKind::Duplicate(p.name.clone()),
                ));
            }
            policies.push(c.policy_entry(p, &rules));
        }
        let default_policy = c.policy_entry(&Policy::default_policy(), &rules);
        for (i, b) in cfg.phishing.brands.iter().enumerate() {
            if !b.contains('.')
                || b.contains(|ch: char| ch.is_whitespace() || ch == '/' || ch == '@')
            {
                c.errors.push(ConfigError::invalid(
                    format!("{}phishing.brands[{i}]", cfg.prefix_dot()),
                    format!("`{b}` is not a domain (like paypal.com)"),
                ));
            }
        }
        let mut errors = std::mem::take(&mut c.errors);
        let fields = std::mem::take(&mut c.fields)
            .into_iter()
            .map(|(k, b)| {
                let m = b.build(
                    &format!("{}rules ({k:?} field)", cfg.prefix_dot()),
                    &mut errors,
                );
                (k, m)
            })
            .collect();
        let p = cfg.prefix_dot();
        let rcpt =
            std::mem::take(&mut c.rcpt).build(&format!("{p}rules (recipient field)"), &mut errors);
        let att_name = std::mem::take(&mut c.att_name)
            .build(&format!("{p}rules (attachment names)"), &mut errors);
        let att_type = std::mem::take(&mut c.att_type)
            .build(&format!("{p}rules (attachment types)"), &mut errors);
        let url_full =
            std::mem::take(&mut c.url_full).build(&format!("{p}rules (URLs)"), &mut errors);
        let url_host =
            std::mem::take(&mut c.url_host).build(&format!("{p}rules (URL hosts)"), &mut errors);
        let url_path =
            std::mem::take(&mut c.url_path).build(&format!("{p}rules (URL paths)"), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let leaves = c.leaves;
        let att_leaves = (0..leaves.len() as LeafId)
            .filter(|i| matches!(leaves[*i as usize], LeafKind::Attachment(_)))
            .collect();
        let url_leaves = (0..leaves.len() as LeafId)
            .filter(|i| matches!(leaves[*i as usize], LeafKind::Url(_)))
            .collect();
        Ok(CompiledPolicy {
            rules,
            leaves,
            fields,
            rcpt,
            att_name,
            att_type,
            url_full,
            url_host,
            url_path,
            att_leaves,
            url_leaves,
            policies,
            default_policy,
            shorteners: cfg.shorteners.iter().map(|s| s.to_lowercase()).collect(),
            brands: cfg
                .phishing
                .brands
                .iter()
                .filter(|b| b.contains('.'))
                .map(|b| super::phishing::Brand::new(b))
                .collect(),
            local_domains: cfg.local_domains.clone(),
            phish_used: c.phish_used,
            auth: cfg.auth.clone(),
        })
    }

    /// Parses and compiles a policy file (`section` empty) or the table at
    /// `section` of a larger file, reporting every error of both steps
    /// with its line.
    pub fn from_toml(text: &str, section: &str) -> Result<CompiledPolicy, Vec<ConfigError>> {
        let (cfg, mut errors) = PolicyConfig::parse_partial(text, section);
        if errors
            .iter()
            .any(|e| matches!(e.kind, ErrorKind::Syntax(_)))
        {
            return Err(errors);
        }
        match CompiledPolicy::compile(&cfg) {
            Ok(p) if errors.is_empty() => Ok(p),
            Ok(_) => {
                errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
                Err(errors)
            }
            Err(mut more) => {
                for e in &mut more {
                    e.line = line_of(text, &e.path);
                }
                errors.extend(more);
                // In file order (errors without a line last).
                errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
                Err(errors)
            }
        }
    }

    /// Names of the rules, in config order (built-in phishing rules last).
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Names of the configured policies, in order (`default` not included).
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.policy.name.as_str())
    }
}

fn compiled_rule(r: &Rule, cond: Cond) -> CompiledRule {
    CompiledRule {
        name: r.name.clone(),
        group: r.group.clone(),
        score: r.score,
        action: r.action.clone(),
        cond,
        per_listing: r.per_listing,
    }
}

impl PolicyConfig {
    /// The prefix with its dot (`policy.`), or empty.
    pub(crate) fn prefix_dot(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}.", self.prefix)
        }
    }
}
