//! Evaluation: phase 1 runs each field's matchers once over the message
//! (independent of recipients); phase 2 groups the recipients by policy
//! and evaluates the rules of each policy from phase 1's leaves.

use std::collections::{HashMap, HashSet};

use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

use super::compile::{
    BitSet, CompiledPolicy, CompiledPolicyEntry, Cond, FieldMatcher, LeafId, LeafKind,
};
use super::config::{ActionKind, AuthTest, Direction, ListKind, PhishCheck, TextField};
use super::domain::{ip_literal, registrable, split_url};
use super::fold::Folder;
use super::phishing::{run_checks, LinkInfo};
use super::verdict::{Action, Envelope, PolicyAction, PolicyHit, PolicyVerdict};
use crate::auth::{AuthResult, AuthResults};
use crate::facts::MessageFacts;
use crate::spam::{SpamResult, DEFAULT_REQUIRED};

/// Most bytes of one field the matchers read (the body is already capped
/// at `facts::MAX_TEXT`; this bounds headers and joined values).
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// Most envelope recipients that recipient tests look at; recipients
/// beyond it still get their policy's verdict, recipient tests just do
/// not see them.
pub const MAX_RECIPIENTS: usize = 1000;
/// Most distinct URLs looked at per message.
pub const MAX_URLS: usize = crate::facts::MAX_LINKS;

/// Per-evaluation buffers.
struct Scratch {
    folder: Folder,
    folded: String,
    pids: Vec<usize>,
    kw: Vec<(u32, u32)>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            folder: Folder::new(),
            folded: String::new(),
            pids: Vec::new(),
            kw: Vec::new(),
        }
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Runs a field's matchers over `value`, setting satisfied leaves in `out`.
fn run_field(m: &FieldMatcher, value: &str, s: &mut Scratch, out: &mut BitSet) {
    let value = cap(value, MAX_FIELD_BYTES);
    if !m.equals.is_empty() {
        for line in value.lines() {
            if let Some(leaves) = m.equals.get(&line.trim().to_lowercase()) {
                leaves.iter().for_each(|l| out.set(*l));
            }
        }
    }
    if let Some(set) = &m.raw {
        for i in set.matches(value).iter() {
            out.set(m.raw_map[i]);
        }
    }
    if !m.needs_fold() {
        return;
    }
    s.folder.fold_into(value, MAX_FIELD_BYTES, &mut s.folded);
    if let Some(ac) = &m.ac {
        s.pids.clear();
        for mat in ac.find_overlapping_iter(s.folded.as_str()) {
            s.pids.push(mat.pattern().as_usize());
        }
        s.pids.sort_unstable();
        s.pids.dedup();
        s.kw.clear();
        for pid in &s.pids {
            s.kw.extend_from_slice(&m.ac_map[*pid]);
        }
        s.kw.sort_unstable();
        s.kw.dedup();
        // Distinct keywords per keyword leaf.
        let mut i = 0;
        while i < s.kw.len() {
            let leaf = s.kw[i].0;
            let mut j = i;
            while j < s.kw.len() && s.kw[j].0 == leaf {
                j += 1;
            }
            let kl = &m.kw_leaves[leaf as usize];
            if j - i >= kl.min {
                out.set(kl.leaf);
            }
            i = j;
        }
    }
    if let Some(set) = &m.folded {
        for i in set.matches(&s.folded).iter() {
            out.set(m.folded_map[i]);
        }
    }
}

fn has_patterns(m: &FieldMatcher) -> bool {
    m.ac.is_some() || m.raw.is_some() || m.folded.is_some() || !m.equals.is_empty()
}

/// A header's values, RFC 2047 encoded words decoded, one per line;
/// `None` when the message has no such header (value tests then do not
/// match; `exists = false` tests absence).
fn header_text(facts: &MessageFacts, name: &str) -> Option<String> {
    facts.header(name)?;
    let mut out = String::new();
    for v in facts.header_values(name) {
        if !out.is_empty() {
            out.push('\n');
        }
        if v.contains("=?") {
            let mut bytes = Vec::with_capacity(v.len() + 2);
            bytes.extend_from_slice(cap(v, MAX_FIELD_BYTES).as_bytes());
            bytes.extend_from_slice(b"\r\n");
            match MessageStream::new(&bytes).parse_unstructured() {
                HeaderValue::Text(t) => out.push_str(&t),
                _ => out.push_str(v),
            }
        } else {
            out.push_str(v);
        }
        if out.len() > MAX_FIELD_BYTES {
            break;
        }
    }
    Some(out)
}

/// Whether the auth results satisfy every key of the test.
fn auth_holds(t: &AuthTest, a: &AuthResults) -> bool {
    let one = |want: &[AuthResult], got: Option<AuthResult>| {
        want.is_empty() || got.is_some_and(|g| want.contains(&g))
    };
    let dkim = t.dkim.is_empty()
        || a.dkim.as_ref().is_some_and(|sigs| {
            (sigs.is_empty() && t.dkim.contains(&AuthResult::None))
                || sigs.iter().any(|s| t.dkim.contains(&s.result))
        });
    let policy = t.dmarc_policy.is_empty()
        || a.dmarc
            .as_ref()
            .and_then(|d| d.policy)
            .is_some_and(|p| t.dmarc_policy.contains(&p));
    one(&t.spf, a.spf.as_ref().map(|s| s.result))
        && dkim
        && one(&t.dmarc, a.dmarc.as_ref().map(|d| d.result))
        && policy
        && one(&t.arc, a.arc)
}

/// (zone, rule name) of each listing of a kind.
fn listings(a: &AuthResults, kind: ListKind) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
    match kind {
        ListKind::Dnsbl => Box::new(a.dnsbl.iter().map(|l| (l.zone.as_str(), l.rule.as_str()))),
        ListKind::Uribl => Box::new(a.uribl.iter().map(|l| (l.zone.as_str(), l.rule.as_str()))),
    }
}

/// Whether a listing is one of `names` (lowercase zones or rule names, `*`).
fn listed(names: &[String], zone: &str, rule: &str) -> bool {
    names.iter().any(|n| {
        n == "*"
            || n.eq_ignore_ascii_case(zone.trim_end_matches('.'))
            || n.eq_ignore_ascii_case(rule)
    })
}

/// What phase 1 learned about a message.
struct MessageState {
    leaves: BitSet,
    /// Attachment locations each attachment leaf matched.
    locations: HashMap<LeafId, Vec<String>>,
}

/// One recipient, as phase 2 sees it.
struct Rcpt {
    address: String,
    direction: Direction,
    leaves: BitSet,
}

fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map_or("", |(_, d)| d)
}

impl CompiledPolicy {
    /// Evaluates the message for each group of recipients that share a
    /// policy: one verdict per policy, in the order the recipients first
    /// appear (never empty). Rules' points add to the classifier's (its
    /// BAYES hit is one hit among the others) when `spam` is given.
    ///
    /// Guarantees: pure, never panics. Each field is folded at most once
    /// and each field's automaton and regex set run once over it (at most
    /// [`MAX_FIELD_BYTES`]); per item (attachment, distinct URL up to
    /// [`MAX_URLS`], recipient up to [`MAX_RECIPIENTS`]) each item
    /// field's sets run once. Policies only walk rule trees over those
    /// results.
    pub fn evaluate(
        &self,
        facts: &MessageFacts,
        env: &Envelope<'_>,
        spam: Option<&SpamResult>,
    ) -> Vec<PolicyVerdict> {
        let mut s = Scratch::new();
        let state = self.message_state(facts, env, &mut s);
        // Recipients and their directions.
        let mut addrs: Vec<String> = env
            .rcpts
            .iter()
            .map(|r| r.trim().trim_matches(['<', '>']).to_lowercase())
            .collect();
        if addrs.is_empty() {
            addrs = facts.recipients.clone();
        }
        let local = |d: &str| {
            !d.is_empty()
                && (env.local_domains.iter().any(|l| l.eq_ignore_ascii_case(d))
                    || self.local_domains.iter().any(|l| l.eq_ignore_ascii_case(d)))
        };
        let sender = env.mail_from.trim().trim_matches(['<', '>']).to_lowercase();
        let sender_local = local(domain_of(&sender));
        let mut rcpts: Vec<Rcpt> = Vec::with_capacity(addrs.len().min(MAX_RECIPIENTS));
        for (i, a) in addrs.iter().enumerate() {
            let direction = match (local(domain_of(a)), sender_local) {
                (true, true) => Direction::Internal,
                (true, false) => Direction::Inbound,
                (false, _) => Direction::Outbound,
            };
            let mut leaves = BitSet::new(self.leaves.len());
            if i < MAX_RECIPIENTS && has_patterns(&self.rcpt) {
                run_field(&self.rcpt, a, &mut s, &mut leaves);
            }
            rcpts.push(Rcpt {
                address: a.clone(),
                direction,
                leaves,
            });
        }
        // Group recipients by policy, in order of first appearance.
        let mut groups: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
        for (i, r) in rcpts.iter().enumerate() {
            let p = self.policies.iter().position(|p| {
                p.policy.direction.covers(r.direction)
                    && (p.policy.recipients.is_empty() || p.recipients.matches(&r.address))
            });
            match groups.iter_mut().find(|(g, _)| *g == p) {
                Some((_, v)) => v.push(i),
                None => groups.push((p, vec![i])),
            }
        }
        if groups.is_empty() {
            let p = self.policies.iter().position(|p| {
                p.policy.recipients.is_empty()
                    && p.policy.direction == super::config::DirectionFilter::Any
            });
            groups.push((p, Vec::new()));
        }
        groups
            .into_iter()
            .map(|(p, members)| {
                let entry = p.map_or(&self.default_policy, |i| &self.policies[i]);
                let share: Vec<&Rcpt> = members.iter().map(|i| &rcpts[*i]).collect();
                self.verdict(entry, &share, &state, facts, &sender, spam)
            })
            .collect()
    }

    fn message_state(
        &self,
        facts: &MessageFacts,
        env: &Envelope<'_>,
        s: &mut Scratch,
    ) -> MessageState {
        let n = self.leaves.len();
        let mut leaves = BitSet::new(n);
        let mut locations: HashMap<LeafId, Vec<String>> = HashMap::new();
        // Message-level text fields: each built, folded and matched once.
        for (field, m) in &self.fields {
            let owned;
            let value: &str = match field {
                TextField::Subject => &facts.subject,
                TextField::From => &facts.from_address,
                TextField::FromName => &facts.from_name,
                TextField::To => {
                    owned = facts.recipients.join("\n");
                    &owned
                }
                TextField::Header(name) => match header_text(facts, name) {
                    Some(t) => {
                        owned = t;
                        &owned
                    }
                    None => continue,
                },
                TextField::Body => {
                    owned = facts
                        .texts
                        .iter()
                        .map(|t| t.text.as_str())
                        .collect::<Vec<_>>()
                        .join("\n");
                    &owned
                }
                TextField::Helo => env.helo,
                TextField::Sender => {
                    owned = env.mail_from.trim().trim_matches(['<', '>']).to_lowercase();
                    &owned
                }
                TextField::Recipient => continue,
            };
            run_field(m, value, s, &mut leaves);
        }
        // Attachments: each item's fields once, then every attachment test.
        if !self.att_leaves.is_empty() {
            let mut item = BitSet::new(n);
            let mut counts = vec![0u64; self.att_leaves.len()];
            for a in &facts.attachments {
                item.clear();
                if let Some(name) = &a.name {
                    run_field(&self.att_name, name, s, &mut item);
                }
                if let Some(t) = &a.declared_type {
                    run_field(&self.att_type, t, s, &mut item);
                }
                for (k, leaf) in self.att_leaves.iter().enumerate() {
                    let LeafKind::Attachment(t) = &self.leaves[*leaf as usize] else {
                        continue;
                    };
                    let ok = (t.inside_archives || !a.nested)
                        && t.items.iter().all(|l| item.get(*l))
                        && (t.true_types.is_empty() || t.true_types.contains(&a.file_type))
                        && t.size.is_none_or(|b| b.holds(a.size))
                        && t.login_form.is_none_or(|w| w == a.html_form_password);
                    if ok {
                        counts[k] += 1;
                        locations.entry(*leaf).or_default().push(a.location.clone());
                    }
                }
            }
            for (k, leaf) in self.att_leaves.iter().enumerate() {
                let LeafKind::Attachment(t) = &self.leaves[*leaf as usize] else {
                    continue;
                };
                let hit = match t.count {
                    Some(b) => b.holds(counts[k]),
                    None => counts[k] > 0,
                };
                if hit {
                    leaves.set(*leaf);
                } else {
                    locations.remove(leaf);
                }
            }
        }
        // Links: distinct hrefs, split once, shared by URL tests and phishing.
        let need_links = !self.url_leaves.is_empty() || !self.phish_used.is_empty();
        let mut links: Vec<LinkInfo<'_>> = Vec::new();
        if need_links {
            let mut seen: HashSet<(&str, Option<&str>)> = HashSet::new();
            for l in &facts.links {
                if links.len() >= MAX_URLS {
                    break;
                }
                if seen.insert((l.href.as_str(), l.text.as_deref())) {
                    links.push(LinkInfo {
                        href: &l.href,
                        text: l.text.as_deref(),
                        parts: split_url(&l.href),
                    });
                }
            }
        }
        if !self.url_leaves.is_empty() {
            let mut item = BitSet::new(n);
            let mut counts = vec![0u64; self.url_leaves.len()];
            let mut hrefs: HashSet<&str> = HashSet::new();
            for l in &links {
                if !hrefs.insert(l.href) {
                    continue;
                }
                let Some(p) = &l.parts else { continue };
                item.clear();
                run_field(&self.url_full, l.href, s, &mut item);
                run_field(&self.url_host, &p.host, s, &mut item);
                run_field(&self.url_path, &p.path, s, &mut item);
                let is_ip = ip_literal(&p.host).is_some();
                let host = p.host.strip_prefix("www.").unwrap_or(&p.host);
                let short =
                    self.shorteners.contains(host) || self.shorteners.contains(registrable(host));
                for (k, leaf) in self.url_leaves.iter().enumerate() {
                    let LeafKind::Url(t) = &self.leaves[*leaf as usize] else {
                        continue;
                    };
                    let ok = t.items.iter().all(|x| item.get(*x))
                        && t.ip_literal.is_none_or(|w| w == is_ip)
                        && t.shortener.is_none_or(|w| w == short)
                        && t.credentials.is_none_or(|w| w == p.credentials);
                    if ok {
                        counts[k] += 1;
                    }
                }
            }
            for (k, leaf) in self.url_leaves.iter().enumerate() {
                let LeafKind::Url(t) = &self.leaves[*leaf as usize] else {
                    continue;
                };
                let hit = match t.count {
                    Some(b) => b.holds(counts[k]),
                    None => counts[k] > 0,
                };
                if hit {
                    leaves.set(*leaf);
                }
            }
        }
        let phish: HashSet<PhishCheck> = if self.phish_used.is_empty() {
            HashSet::new()
        } else {
            run_checks(
                &self.phish_used,
                facts,
                &links,
                env.mail_from,
                &self.brands,
                &mut s.folder,
            )
        };
        // The remaining leaves.
        for (i, kind) in self.leaves.iter().enumerate() {
            let hit = match kind {
                LeafKind::HeaderExists { name, want } => facts.header(name).is_some() == *want,
                LeafKind::ClientIp(nets) => env
                    .client_ip
                    .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
                LeafKind::Size(b) => b.holds(facts.size as u64),
                LeafKind::Phishing(c) => phish.contains(c),
                LeafKind::Auth(t) => facts.auth.as_ref().is_some_and(|a| auth_holds(t, a)),
                LeafKind::Listed(kind, names) => facts.auth.as_ref().is_some_and(|a| {
                    listings(a, *kind).any(|(zone, rule)| listed(names, zone, rule))
                }),
                _ => false,
            };
            if hit {
                leaves.set(i as LeafId);
            }
        }
        MessageState { leaves, locations }
    }

    /// Evaluates one condition; `locs` collects the attachment locations
    /// of attachment leaves that hold outside any `not`.
    fn eval(
        &self,
        c: &Cond,
        st: &MessageState,
        share: &[&Rcpt],
        locs: Option<&mut Vec<String>>,
    ) -> bool {
        match c {
            Cond::All(v) => {
                let mut found = Vec::new();
                let mut ok = true;
                for x in v {
                    if !self.eval(x, st, share, Some(&mut found)) {
                        ok = false;
                        break;
                    }
                }
                if ok {
                    if let Some(l) = locs {
                        l.extend(found);
                    }
                }
                ok
            }
            Cond::Any(v) => {
                let mut ok = false;
                let mut found = Vec::new();
                for x in v {
                    // No short cut: every true branch names its attachments.
                    ok |= self.eval(x, st, share, Some(&mut found));
                }
                if let Some(l) = locs {
                    l.extend(found);
                }
                ok
            }
            Cond::Not(x) => !self.eval(x, st, share, None),
            Cond::Leaf(id) => {
                let hit = st.leaves.get(*id);
                if hit {
                    if let (Some(l), Some(found)) = (locs, st.locations.get(id)) {
                        l.extend(found.iter().cloned());
                    }
                }
                hit
            }
            Cond::Rcpt(ids) => share.iter().any(|r| ids.iter().all(|i| r.leaves.get(*i))),
            Cond::Direction(d) => share.iter().any(|r| r.direction == *d),
        }
    }

    fn verdict(
        &self,
        entry: &CompiledPolicyEntry,
        share: &[&Rcpt],
        st: &MessageState,
        facts: &MessageFacts,
        sender: &str,
        spam: Option<&SpamResult>,
    ) -> PolicyVerdict {
        let p = &entry.policy;
        let required = p
            .required_score
            .or(spam.map(|s| s.required))
            .unwrap_or(DEFAULT_REQUIRED);
        let mut v = PolicyVerdict {
            policy: p.name.clone(),
            recipients: share.iter().map(|r| r.address.clone()).collect(),
            hits: Vec::new(),
            score: 0.0,
            required,
            spam: false,
            actions: Vec::new(),
            allowed: false,
            denied: false,
        };
        let from = facts.from_address.as_str();
        let on = |set: &super::compile::AddressSet| {
            (!sender.is_empty() && set.matches(sender)) || (!from.is_empty() && set.matches(from))
        };
        if on(&entry.deny) {
            v.denied = true;
            v.hits.push(PolicyHit {
                name: "DENY_SENDER".into(),
                group: "lists".into(),
                points: 0.0,
                action: Some(p.deny_action.kind),
            });
            v.actions.push(PolicyAction::from_spec(
                &p.deny_action,
                "DENY_SENDER",
                Vec::new(),
            ));
            return v;
        }
        if on(&entry.allow) {
            v.allowed = true;
            return v;
        }
        let mut score = 0.0;
        let mut actions: Vec<PolicyAction> = Vec::new();
        for &ri in &entry.rules {
            let r = &self.rules[ri];
            let mut locs = Vec::new();
            if !self.eval(&r.cond, st, share, Some(&mut locs)) {
                continue;
            }
            if let Some(kind) = r.per_listing {
                // One hit per listing rule (the first listing of each).
                let Some(a) = &facts.auth else { continue };
                let mut seen: Vec<&str> = Vec::new();
                let all: Vec<(&str, f64)> = match kind {
                    ListKind::Dnsbl => a.dnsbl.iter().map(|l| (l.rule.as_str(), l.score)).collect(),
                    ListKind::Uribl => a.uribl.iter().map(|l| (l.rule.as_str(), l.score)).collect(),
                };
                for (rule, zone_points) in all {
                    if seen.contains(&rule) || self.auth.disabled(rule) {
                        continue;
                    }
                    seen.push(rule);
                    let points = self.auth.score_of(rule).or(r.score).unwrap_or(zone_points);
                    let points = if points.is_finite() { points } else { 0.0 };
                    score += points;
                    v.hits.push(PolicyHit {
                        name: rule.to_string(),
                        group: r.group.clone(),
                        points,
                        action: None,
                    });
                }
                continue;
            }
            let points = r.score.unwrap_or(0.0);
            score += points;
            v.hits.push(PolicyHit {
                name: r.name.clone(),
                group: r.group.clone(),
                points,
                action: r.action.as_ref().map(|a| a.kind),
            });
            if let Some(a) = &r.action {
                locs.sort();
                locs.dedup();
                actions.push(PolicyAction::from_spec(a, &r.name, locs));
            }
        }
        if let Some(sr) = spam {
            for h in &sr.rules {
                score += h.points;
                v.hits.push(PolicyHit {
                    name: h.name.clone(),
                    group: "spam".into(),
                    points: h.points,
                    action: None,
                });
            }
        }
        v.score = (score * 100.0).round() / 100.0;
        v.spam = v.score >= required;
        if v.spam {
            actions.push(PolicyAction::from_spec(&p.spam_action, "SPAM", Vec::new()));
        }
        if let (Some(hs), Some(ha)) = (p.high_score, &p.high_action) {
            if v.score >= hs {
                actions.push(PolicyAction::from_spec(ha, "SPAM_HIGH", Vec::new()));
            }
        }
        v.actions = combine(actions);
        v
    }
}

/// Orders actions strongest first and keeps one per kind (bcc: one per
/// address; clean: the union of locations; notices: the union). A `pass` from a rule
/// overrides everything else.
fn combine(mut actions: Vec<PolicyAction>) -> Vec<PolicyAction> {
    if let Some(pass) = actions.iter().position(|a| {
        a.action.kind() == ActionKind::Pass && a.rule != "SPAM" && a.rule != "SPAM_HIGH"
    }) {
        return vec![actions.swap_remove(pass)];
    }
    actions.sort_by_key(|a| a.action.kind());
    let mut out: Vec<PolicyAction> = Vec::new();
    for a in actions {
        let same = out.iter_mut().find(|o| match (&o.action, &a.action) {
            (Action::Bcc { to }, Action::Bcc { to: other }) => to == other,
            (x, y) => x.kind() == y.kind(),
        });
        match same {
            Some(o) => {
                // Notices of merged actions are kept (each once).
                for n in a.notices {
                    if !o.notices.contains(&n) {
                        o.notices.push(n);
                    }
                }
                if let (Action::Clean { locations }, Action::Clean { locations: more }) =
                    (&mut o.action, a.action)
                {
                    for l in more {
                        if !locations.contains(&l) {
                            locations.push(l);
                        }
                    }
                }
            }
            None => out.push(a),
        }
    }
    out
}
