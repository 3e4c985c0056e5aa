//! HTML building blocks: escaping, the page layout, tables and SVG charts.
//!
//! Everything that comes from outside (mail headers, addresses, subjects,
//! threat names, user input) goes through [`esc`]; there is no other way
//! text reaches a page.

use crate::auth::Principal;
use axum::http::StatusCode;
use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (but tab and newlines) are shown, not passed.
            c if c.is_control() && c != '\n' && c != '\t' && c != '\r' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value or path segment.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `2026-11-23 05:00:00` (UTC).
pub fn time(secs: i64) -> String {
    mxguard_store::events::format_utc(secs)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// `1.2 MB`-style sizes.
pub fn bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Microseconds as `850 µs`, `12.3 ms`, `1.20 s`.
pub fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// Thousands separators.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The sender as shown (`<>` for the null sender).
pub fn sender(s: &str) -> &str {
    if s.is_empty() {
        "<>"
    } else {
        s
    }
}

/// Navigation entries: (path, label, admin only).
const NAV: [(&str, &str, bool); 9] = [
    ("/", "Dashboard", false),
    ("/quarantine", "Quarantine", false),
    ("/events", "Message trace", false),
    ("/reports", "Reports", false),
    ("/policy", "Policies", false),
    ("/signatures", "Signatures", false),
    ("/system", "System", false),
    ("/users", "Users & tokens", false),
    ("/account", "Account", false),
];

/// A whole page: head, navigation, the body given, and the script.
pub fn page(title: &str, who: &Principal, active: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 2048);
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · mxguard</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/static/app.css\">\
         <script src=\"/static/app.js\" defer></script></head><body>\
         <header><a class=\"brand\" href=\"/\">mxguard</a><nav>",
        esc(title)
    );
    for (path, label, admin_only) in NAV {
        if admin_only && !who.is_admin() {
            continue;
        }
        let cls = if path == active {
            " class=\"active\""
        } else {
            ""
        };
        let _ = write!(s, "<a href=\"{path}\"{cls}>{label}</a>");
    }
    let _ = write!(
        s,
        "</nav><form method=\"post\" action=\"/logout\" class=\"logout\">{}\
         <span class=\"who\">{} ({})</span> <button type=\"submit\">Log out</button></form></header>\
         <main><h1>{}</h1>{body}</main></body></html>",
        csrf_field(who),
        esc(&who.user),
        who.role.as_str(),
        esc(title)
    );
    s
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(who: &Principal) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(who.csrf())
    )
}

/// A page for errors (403, 404...), without navigation.
pub fn error_page(status: StatusCode, msg: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · mxguard</title>\
         <link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"narrow\">\
         <h1>{}</h1><p>{}</p><p><a href=\"/\">Back to the console</a></p></main></body></html>",
        status.as_u16(),
        esc(&status.to_string()),
        esc(msg)
    )
}

/// A notice box (`ok` or `err`).
pub fn notice(kind: &str, msg: &str) -> String {
    format!("<p class=\"notice {kind}\">{}</p>", esc(msg))
}

/// Colours of the verdicts in charts and badges.
pub fn verdict_colour(v: &str) -> &'static str {
    match v {
        "clean" => "#3b8a3e",
        "infected" => "#c62828",
        "suspicious" => "#ef6c00",
        "spam" => "#8e24aa",
        "error" | "unscannable" => "#6d4c41",
        _ => "#546e7a",
    }
}

/// A stacked bar chart: one bar per time slot, one colour per series.
/// `slots`: start times; `series`: (name, value per slot).
pub fn stacked_bars(
    slots: &[i64],
    series: &[(String, Vec<u64>)],
    slot_label: impl Fn(i64) -> String,
) -> String {
    let (w, h, left, bottom, top) = (900.0f64, 260.0f64, 50.0f64, 30.0f64, 10.0f64);
    let n = slots.len().max(1);
    let totals: Vec<u64> = (0..slots.len())
        .map(|i| series.iter().map(|(_, v)| v[i]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let scale = nice_max(max);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let bw = plot_w / n as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"messages per slot by verdict\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for k in 0..=4 {
        let v = scale * k / 4;
        let y = top + plot_h - plot_h * (v as f64 / scale as f64);
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            w - 10.0,
            left - 4.0,
            y + 4.0,
            num(v)
        );
    }
    for (i, slot) in slots.iter().enumerate() {
        let x = left + i as f64 * bw;
        let mut y = top + plot_h;
        for (name, vals) in series {
            let v = vals[i];
            if v == 0 {
                continue;
            }
            let bh = plot_h * v as f64 / scale as f64;
            y -= bh;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                x + bw * 0.1,
                (bw * 0.8).max(1.0),
                verdict_colour(name),
                esc(&slot_label(*slot)),
                esc(name),
                num(v)
            );
        }
        let every = (n / 8).max(1);
        if i % every == 0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
                x + bw / 2.0,
                h - 10.0,
                esc(&slot_label(*slot))
            );
        }
    }
    s.push_str("</svg><div class=\"legend\">");
    for (name, vals) in series {
        let total: u64 = vals.iter().sum();
        let _ = write!(
            s,
            "<span><svg width=\"12\" height=\"12\"><rect width=\"12\" height=\"12\" fill=\"{}\"/></svg> {} ({})</span>",
            verdict_colour(name),
            esc(name),
            num(total)
        );
    }
    s.push_str("</div>");
    s
}

/// Horizontal bars for a ranking: (label, value).
pub fn hbars(rows: &[(String, u64)], colour: &str) -> String {
    if rows.is_empty() {
        return "<p class=\"muted\">Nothing in this period.</p>".into();
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    let (w, row_h) = (420.0f64, 22.0f64);
    let h = row_h * rows.len() as f64;
    let mut s = format!(
        "<svg class=\"hbars\" viewBox=\"0 0 {w} {h}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = i as f64 * row_h;
        let bw = (w - 170.0) * (*v as f64 / max as f64);
        let short: String = if label.chars().count() > 26 {
            let mut t: String = label.chars().take(25).collect();
            t.push('…');
            t
        } else {
            label.clone()
        };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\" fill=\"#222\"><title>{}</title>{}</text>\
             <rect x=\"170\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">{}</text>",
            y + 15.0,
            esc(label),
            esc(&short),
            y + 4.0,
            bw.max(1.0),
            row_h - 8.0,
            (172.0 + bw).min(w - 40.0),
            y + 15.0,
            num(*v)
        );
    }
    s.push_str("</svg>");
    s
}

/// A round upper bound for a chart axis (1, 2, 5 × 10^k), divisible by 4
/// when above 4.
fn nice_max(v: u64) -> u64 {
    let mut p = 1u64;
    loop {
        for m in [1u64, 2, 5] {
            let c = m.saturating_mul(p);
            if c >= v {
                return if c >= 4 { c.div_ceil(4) * 4 } else { c };
            }
        }
        p = p.saturating_mul(10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href='x'>\"&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&lt;/a&gt;"
        );
        assert_eq!(esc("a\u{1b}b"), "a\\u{1b}b");
        assert_eq!(url_encode("/q?a=b c"), "%2Fq%3Fa%3Db%20c");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(num(12), "12");
        assert_eq!(nice_max(7), 12);
        assert_eq!(nice_max(1), 1);
        assert_eq!(nice_max(101), 200);
    }
}
