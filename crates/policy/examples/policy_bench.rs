//! Throughput of the rules engine on a mail corpus: facts gathering plus
//! evaluation of a realistic policy (60+ rules, a few hundred keywords,
//! 20 regexes, lists, synonyms, two policies, the built-in phishing
//! checks), on one thread.
//!
//! ```sh
//! tar xzf ../shared/corpus/spamassassin-corpus.tar.gz -C bench/work   # once
//! cargo run --release -p mxguard-policy --example policy_bench -- bench/work/spamassassin
//! ```
//!
//! Prints messages/s for gathering, for evaluation alone and for both, and
//! how often each rule fired; runs evaluation twice and fails if the two
//! runs disagree (the figure is only worth something if the work is).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mxguard_decode::{DecodeOptions, Decoder};
use mxguard_policy::rules::{CompiledPolicy, Envelope};
use mxguard_policy::MessageFacts;

/// Spam and scam vocabulary for the keyword rules.
const WORDS: &[&str] = &[
    "free",
    "winner",
    "lottery",
    "prize",
    "claim your prize",
    "cash",
    "bonus",
    "viagra",
    "cialis",
    "pharmacy",
    "cheap meds",
    "prescription",
    "weight loss",
    "lose weight",
    "diet pills",
    "miracle",
    "guaranteed",
    "risk free",
    "no risk",
    "money back",
    "act now",
    "limited time",
    "urgent",
    "expires",
    "order now",
    "buy now",
    "click here",
    "click below",
    "unsubscribe",
    "remove me",
    "opt out",
    "mortgage",
    "refinance",
    "low rate",
    "credit card",
    "debt",
    "consolidate",
    "loan",
    "investment",
    "stock alert",
    "penny stock",
    "double your",
    "earn money",
    "make money",
    "work from home",
    "extra income",
    "home based",
    "be your own boss",
    "financial freedom",
    "million dollars",
    "wire transfer",
    "western union",
    "bank account",
    "beneficiary",
    "inheritance",
    "next of kin",
    "nigeria",
    "barrister",
    "confidential",
    "transaction",
    "fund transfer",
    "dear friend",
    "dear sir",
    "congratulations",
    "selected",
    "you have been chosen",
    "special promotion",
    "exclusive deal",
    "discount",
    "save big",
    "lowest price",
    "best price",
    "wholesale",
    "replica",
    "rolex",
    "watches",
    "casino",
    "online casino",
    "poker",
    "jackpot",
    "bet",
    "adult",
    "singles",
    "dating",
    "hot girls",
    "xxx",
    "enlargement",
    "enhancement",
    "stamina",
    "performance",
    "herbal",
    "natural",
    "vitamins",
    "supplement",
    "anti aging",
    "hair loss",
    "meet singles",
    "password",
    "verify your account",
    "account suspended",
    "update your information",
    "security alert",
    "unusual activity",
    "confirm your identity",
    "login",
    "sign in",
    "paypal",
    "ebay",
    "bank of america",
    "invoice",
    "payment",
    "overdue",
    "refund",
    "tax refund",
    "irs",
    "delivery failed",
    "package",
    "shipment",
    "tracking number",
    "customs",
    "fee",
    "bitcoin",
    "crypto",
    "investment opportunity",
    "roi",
    "profit",
    "trading",
    "forex",
    "software",
    "oem",
    "adobe",
    "microsoft office",
    "license",
    "degree",
    "diploma",
    "university",
    "certificate",
    "seminar",
    "webinar",
    "newsletter",
    "subscription",
    "free trial",
    "no cost",
    "gratis",
    "100%",
    "satisfaction",
    "amazing",
    "incredible",
    "unbelievable",
    "once in a lifetime",
    "don't miss",
    "hurry",
    "last chance",
    "final notice",
];

/// Domains for the URL list (a block list of a few hundred).
fn bad_domains() -> Vec<String> {
    (0..300).map(|i| format!("spam-site-{i}.test")).collect()
}

fn policy_toml() -> String {
    let mut t = String::new();
    t.push_str("[[lists]]\nname = \"bad_domains\"\nvalues = [");
    t.push_str(
        &bad_domains()
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", "),
    );
    t.push_str("]\n\n[[lists]]\nname = \"blocked_senders\"\nvalues = [\"*@spam.example\", \"@bulk.example\", \"list-owner@junk.test\"]\n\n");
    for (w, v) in [
        ("free", "gratis\", \"fr3e"),
        ("money", "cash\", \"dough"),
        ("cheap", "inexpensive\", \"low cost"),
        ("winner", "champion"),
        ("urgent", "immediate\", \"asap"),
        ("account", "acct"),
        ("verify", "confirm\", \"validate"),
        ("offer", "deal"),
        ("pills", "tablets"),
        ("loan", "credit"),
    ] {
        t.push_str(&format!(
            "[[synonyms]]\nword = \"{w}\"\nvariants = [\"{v}\"]\n\n"
        ));
    }
    // 30 body keyword rules of 10 keywords (300 keywords), min 1-3.
    for i in 0..30 {
        let kws: Vec<String> = (0..10)
            .map(|k| format!("\"{}\"", WORDS[(i * 7 + k * 13) % WORDS.len()]))
            .collect();
        t.push_str(&format!(
            "[[rules]]\nname = \"BODY_KW_{i}\"\ngroup = \"spam\"\nscore = {}\nmatch = {{ body = {{ keywords = [{}], min = {} }} }}\n\n",
            0.5 + (i % 5) as f64 * 0.3,
            kws.join(", "),
            1 + i % 3
        ));
    }
    // 10 subject keyword rules.
    for i in 0..10 {
        let kws: Vec<String> = (0..5)
            .map(|k| format!("\"{}\"", WORDS[(i * 11 + k * 17 + 3) % WORDS.len()]))
            .collect();
        t.push_str(&format!(
            "[[rules]]\nname = \"SUBJ_KW_{i}\"\ngroup = \"spam\"\nscore = 0.8\nmatch = {{ subject = {{ keywords = [{}] }} }}\n\n",
            kws.join(", ")
        ));
    }
    // 20 regexes over body, subject, headers and URLs.
    let regexes: [(&str, &str); 20] = [
        ("body", r"\b\d{1,3}% off\b"),
        ("body", r"\$\d+(,\d{3})*(\.\d\d)? (per|a) (day|week|month)"),
        ("body", r"call (now|today)[: ]+\+?\d[\d -]{7,}"),
        ("body", r"(?:\b[A-Z]{4,}\b\W+){5}"),
        ("body", r"reply to [\w.]+@[\w.]+"),
        ("body", r"\bi am (mr|mrs|dr|barrister)\.? [a-z]+"),
        ("body", r"\b(100|one hundred) percent (free|guaranteed)\b"),
        ("body", r"\bact (now|fast|today)\b"),
        ("body", r"\bremove\b.{0,20}\bmailing list\b"),
        ("body", r"\bthis is not spam\b"),
        ("subject", r"^\s*re:\s*$"),
        ("subject", r"[!?]{3,}"),
        ("subject", r"\b(fw|fwd):.*\$\d"),
        ("subject", r"^[A-Z0-9 !$]{15,}$"),
        ("subject", r"\badv\b|\[adv\]"),
        ("header", r"(?:^|\W)(massmail|bulk ?mailer|group ?mail)"),
        ("header", r"^\s*$"),
        ("url", r"\.(php|asp)\?.*(id|ref)="),
        ("url", r"/(~|%7e)[a-z]+/"),
        ("url", r"\b(click|track|redirect)\b.*\bhttps?%3a"),
    ];
    for (i, (field, re)) in regexes.iter().enumerate() {
        let m = match *field {
            "header" if i == 15 => {
                format!("{{ header = {{ name = \"X-Mailer\", regex = ['{re}'] }} }}")
            }
            "header" => format!("{{ header = {{ name = \"Reply-To\", regex = ['{re}'] }} }}"),
            "url" => format!("{{ url = {{ regex = ['{re}'] }} }}"),
            f if i == 3 || i == 13 => {
                format!("{{ {f} = {{ regex = ['{re}'], case_sensitive = true }} }}")
            }
            f => format!("{{ {f} = {{ regex = ['{re}'] }} }}"),
        };
        t.push_str(&format!(
            "[[rules]]\nname = \"RE_{i}\"\ngroup = \"spam\"\nscore = 0.7\nmatch = {m}\n\n"
        ));
    }
    t.push_str(r#"
[[rules]]
name = "EXE_ATTACHMENT"
group = "attachment"
match = { attachment = { true_type = ["pe", "elf", "macho"], inside_archives = true } }
action = "clean"

[[rules]]
name = "DANGEROUS_NAME"
group = "attachment"
match = { attachment = { name = ["*.exe", "*.scr", "*.pif", "*.bat", "*.cmd", "*.com", "*.js", "*.vbs", "*.jar", "*.hta"], inside_archives = true } }
action = "clean"

[[rules]]
name = "DOUBLE_EXTENSION"
group = "attachment"
match = { attachment = { name_regex = ['\.(pdf|doc|jpg|txt)\.(exe|scr|js|vbs)$'] } }
action = "quarantine"

[[rules]]
name = "OFFICE_MACRO_TYPE"
group = "attachment"
match = { attachment = { true_type = ["ole2"], declared_type = ["application/vnd.ms-*", "application/msword"] } }
score = 0.5

[[rules]]
name = "MANY_ATTACHMENTS"
group = "attachment"
match = { attachment = { count = { ge = 10 } } }
score = 1.0

[[rules]]
name = "BAD_URL_DOMAIN"
group = "url"
match = { url = { domain = ["list:bad_domains"] } }
score = 4.0

[[rules]]
name = "SHORT_URL"
group = "url"
match = { url = { shortener = true } }
score = 0.6

[[rules]]
name = "MANY_URLS"
group = "url"
match = { url = { count = { gt = 20 } } }
score = 0.4

[[rules]]
name = "BLOCKED_SENDER"
group = "lists"
match = { sender = { addresses = ["list:blocked_senders"] } }
action = "reject"

[[rules]]
name = "HELO_BARE_IP"
group = "connection"
match = { helo = { regex = ['^\[?\d+\.\d+\.\d+\.\d+\]?$'] } }
score = 1.0

[[rules]]
name = "DIALUP_NET"
group = "connection"
match = { client_ip = { cidr = ["10.0.0.0/8", "192.168.0.0/16", "100.64.0.0/10"] } }
score = 0.5

[[rules]]
name = "BIG_MESSAGE"
group = "size"
match = { size = { gt = "5M" } }
score = 0.1

[[rules]]
name = "NO_MESSAGE_ID"
match = { header = { name = "Message-ID", exists = false } }
score = 0.8

[[rules]]
name = "FROM_NAME_IS_ADDRESS"
match = { from_name = { regex = ['@'] } }
score = 0.4

[[rules]]
name = "LOTTERY_COMBO"
group = "spam"
match = { all = [ { body = { keywords = ["lottery", "winner"], min = 2 } }, { not = { from = { addresses = ["@lottery.example"] } } } ] }
score = 3.0
action = "quarantine"

[[policies]]
name = "finance"
direction = "inbound"
recipients = ["finance@example.com", "@accounting.example.com"]
groups = ["spam", "attachment", "phishing"]
required_score = 4.0

[[policies]]
name = "everyone"
direction = "inbound"
"#);
    t
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p
            .file_name()
            .is_some_and(|n| n != "cmds" && n != "LICENSE.txt")
        {
            out.push(p);
        }
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/work/spamassassin".into());
    let mut paths = Vec::new();
    files(Path::new(&dir), &mut paths);
    paths.sort();
    let msgs: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    assert!(!msgs.is_empty(), "no messages under {dir}");
    let bytes: usize = msgs.iter().map(|m| m.len()).sum();

    let text = policy_toml();
    let t0 = Instant::now();
    let policy = CompiledPolicy::from_toml(&text, "").unwrap_or_else(|e| {
        panic!("{}", mxguard_policy::rules::format_errors(&e));
    });
    let compile = t0.elapsed();
    let rules = policy.rule_names().count();

    let decoder = Decoder::new(DecodeOptions {
        text: true,
        ..Default::default()
    });
    let t1 = Instant::now();
    let facts: Vec<MessageFacts> = msgs
        .iter()
        .map(|m| MessageFacts::gather(&decoder, m))
        .collect();
    let gather = t1.elapsed();

    let rcpts = vec![
        "user@example.com".to_string(),
        "finance@example.com".to_string(),
    ];
    let local = vec!["example.com".to_string()];
    let env = Envelope {
        client_ip: "203.0.113.9".parse().ok(),
        helo: "mail.sender.test",
        mail_from: "sender@sender.test",
        rcpts: &rcpts,
        local_domains: &local,
    };
    let mut counts: Vec<BTreeMap<String, usize>> = Vec::new();
    let mut evals = Vec::new();
    for _ in 0..2 {
        let mut c: BTreeMap<String, usize> = BTreeMap::new();
        let t2 = Instant::now();
        for f in &facts {
            for v in policy.evaluate(f, &env, None) {
                for h in v.hits {
                    *c.entry(format!("{}:{}", v.policy, h.name)).or_default() += 1;
                }
            }
        }
        evals.push(t2.elapsed());
        counts.push(c);
    }
    assert_eq!(counts[0], counts[1], "two runs disagree");
    let eval = evals.iter().min().copied().unwrap_or_default();
    let n = msgs.len() as f64;
    println!(
        "{} messages ({:.1} MB), policy of {rules} rules compiled in {:.1} ms",
        msgs.len(),
        bytes as f64 / 1e6,
        compile.as_secs_f64() * 1e3
    );
    println!(
        "gather facts:        {:>8.0} msg/s ({:.2} s)",
        n / gather.as_secs_f64(),
        gather.as_secs_f64()
    );
    println!(
        "evaluate (2 policies): {:>6.0} msg/s ({:.2} s)",
        n / eval.as_secs_f64(),
        eval.as_secs_f64()
    );
    println!(
        "gather + evaluate:   {:>8.0} msg/s per core",
        n / (gather + eval).as_secs_f64()
    );
    let total: usize = counts[0].values().sum();
    println!("{total} rule hits; per policy and rule:");
    for (k, v) in &counts[0] {
        println!("  {k:<40} {v}");
    }
    assert!(total > 0, "no rule fired: the benchmark measured nothing");
}
