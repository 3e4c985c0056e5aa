//! Macros (Sendmail's "symbols") the MTA sends before each command, kept per stage.

use crate::consts::MacroStage;

/// Most macros kept for one stage; more in later frames replace, never grow past this.
pub const MAX_MACROS_PER_STAGE: usize = crate::consts::MAX_MACROS_PER_FRAME;

/// The macros of the current connection and message, by stage.
///
/// Each `SMFIC_MACRO` frame replaces the stage's previous macros. Names are
/// stored without braces (`{client_addr}` and `client_addr` are the same
/// macro), so lookups work either way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Macros {
    stages: [Vec<(String, String)>; 7],
}

fn index(stage: MacroStage) -> usize {
    MacroStage::ALL
        .iter()
        .position(|s| *s == stage)
        .unwrap_or(0)
}

fn bare(name: &str) -> &str {
    name.strip_prefix('{')
        .and_then(|n| n.strip_suffix('}'))
        .unwrap_or(name)
}

impl Macros {
    /// Replaces `stage`'s macros (at most [`MAX_MACROS_PER_STAGE`] kept).
    pub fn set_stage(&mut self, stage: MacroStage, macros: Vec<(String, String)>) {
        let v = &mut self.stages[index(stage)];
        *v = macros
            .into_iter()
            .take(MAX_MACROS_PER_STAGE)
            .map(|(n, val)| (bare(&n).to_string(), val))
            .collect();
    }

    /// Forgets the macros of `stage` and every later stage (protocol order:
    /// connect, HELO, MAIL, RCPT, DATA, EOH, EOM).
    pub fn clear_from(&mut self, stage: MacroStage) {
        for v in &mut self.stages[index(stage)..] {
            v.clear();
        }
    }

    /// The value of `name` (with or without braces), from the latest stage
    /// that has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = bare(name);
        self.stages
            .iter()
            .rev()
            .flat_map(|v| v.iter().rev())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The macros of one stage, as received (names without braces).
    pub fn stage(&self, stage: MacroStage) -> &[(String, String)] {
        &self.stages[index(stage)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn lookup_with_and_without_braces_latest_stage_wins() {
        let mut m = Macros::default();
        m.set_stage(
            MacroStage::Connect,
            pairs(&[("j", "mx"), ("{client_addr}", "192.0.2.1")]),
        );
        m.set_stage(
            MacroStage::Mail,
            pairs(&[("i", "Q1"), ("{mail_addr}", "a@b")]),
        );
        m.set_stage(MacroStage::Eom, pairs(&[("i", "Q2")]));
        assert_eq!(m.get("{client_addr}"), Some("192.0.2.1"));
        assert_eq!(m.get("client_addr"), Some("192.0.2.1"));
        assert_eq!(m.get("i"), Some("Q2"));
        assert_eq!(m.get("{i}"), Some("Q2"));
        assert_eq!(m.get("{nope}"), None);
        m.clear_from(MacroStage::Mail);
        assert_eq!(m.get("i"), None);
        assert_eq!(m.get("j"), Some("mx"));
        assert!(m.stage(MacroStage::Eom).is_empty());
        // A new frame for a stage replaces it.
        m.set_stage(MacroStage::Connect, pairs(&[("j", "other")]));
        assert_eq!(m.get("client_addr"), None);
        assert_eq!(m.get("j"), Some("other"));
    }
}
