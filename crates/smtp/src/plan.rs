//! From findings and policy verdicts to what the gateway does, per group of
//! recipients.
//!
//! A message's findings come from two places: the scan (signatures and
//! heuristics: classes `infected`, `suspicious`, `unscannable`, whose
//! actions are `[actions]`) and the rules engine (one
//! [`mxguard_policy::PolicyVerdict`] per group of recipients that share a
//! policy: its actions, and the spam verdict over the rules' points plus
//! the classifier's). Each finding gets its action here ([`Decided`]); the
//! strictest action of a group is what happens to that group's copy, and
//! the other actions add to it where they can (a tag, a banner, a Bcc).
//!
//! Policy findings are named `Policy.<RULE>` (class `policy`); the spam
//! verdict is the `Spam.Score` finding (class `spam`; `Spam.HighScore` for
//! a policy's `high_action`). A policy's `pass` overrides the policy's own
//! actions, never the antivirus verdict.

use crate::config::{Action, ActionConfig};
use crate::pipeline::{class_of, Class, SPAM_FINDING};
use mxguard_policy::rules::NoticeTarget;
use mxguard_policy::{PolicyAction, PolicyVerdict, SpamResult};
use mxguard_types::{EngineKind, Finding, Severity};

/// The finding of a policy's `high_action` (a spam score above `high_score`).
pub const SPAM_HIGH_FINDING: &str = "Spam.HighScore";

/// A parameter an action came with from a policy rule (the `[actions]`
/// value applies when there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    None,
    /// The reply text of `reject` / `tempfail`.
    Text(String),
    /// The address of `redirect` / `bcc`.
    Address(String),
    /// The banner of `warn` (empty: `[actions] warn_banner`).
    Banner(String),
    /// The Subject prefix of `tag` (`None`: no prefix).
    SubjectTag(Option<String>),
}

/// One finding and what it asks for.
#[derive(Debug, Clone)]
pub struct Decided {
    pub finding: Finding,
    pub action: Action,
    pub param: Param,
}

/// Notices a policy rule asked for: (audience, template name).
pub type Requested = (crate::notify::Audience, String);

/// What happens to the copy of one group of recipients.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The recipients (as in the envelope).
    pub rcpts: Vec<String>,
    /// The policy that covers them (`None` when the rules engine did not run).
    pub policy: Option<String>,
    pub decided: Vec<Decided>,
    /// The spam verdict over the rules' points and the classifier's.
    pub spam: Option<SpamResult>,
    pub notices: Vec<Requested>,
    /// Our `Authentication-Results` value, when the checks ran.
    pub auth_header: Option<String>,
}

impl Plan {
    /// The strictest action, `None` when there is nothing to act on.
    pub fn action(&self) -> Option<Action> {
        self.decided
            .iter()
            .map(|d| d.action)
            .max_by_key(|a| a.rank())
    }

    /// The findings, in order.
    pub fn findings(&self) -> Vec<Finding> {
        self.decided.iter().map(|d| d.finding.clone()).collect()
    }

    /// The decision that set the strictest action (the first of its rank).
    pub fn deciding(&self) -> Option<&Decided> {
        let a = self.action()?;
        self.decided.iter().find(|d| d.action == a)
    }

    /// Its class (for texts and the quarantine's reason).
    pub fn class(&self) -> Class {
        self.deciding()
            .map(|d| class_of(&d.finding))
            .unwrap_or(Class::Unscannable)
    }

    pub fn uses(&self, a: Action) -> bool {
        self.decided.iter().any(|d| d.action == a)
    }
}

/// The scan's findings with their `[actions]` (scan error included as an
/// `unscannable` finding).
pub fn scan_decisions(findings: &[Finding], error: Option<&str>, a: &ActionConfig) -> Vec<Decided> {
    let mut out: Vec<Decided> = findings
        .iter()
        .map(|f| Decided {
            finding: f.clone(),
            action: action_for(class_of(f), a),
            param: Param::None,
        })
        .collect();
    if let Some(err) = error {
        out.push(Decided {
            finding: Finding::heuristic("Heuristics.Unscannable.Error", "", err.to_string()),
            action: a.unscannable,
            param: Param::None,
        });
    }
    out
}

pub fn action_for(c: Class, a: &ActionConfig) -> Action {
    match c {
        Class::Infected => a.infected,
        Class::Suspicious => a.suspicious,
        Class::Unscannable => a.unscannable,
        Class::Spam => a.spam,
        // Policy findings carry their own action; this is the fallback for
        // a finding seen again without its plan (a rescan after cleaning).
        Class::Policy => Action::Pass,
    }
}

fn policy_finding(name: String, location: String, detail: String) -> Finding {
    Finding {
        name,
        engine: EngineKind::Policy,
        severity: Severity::Suspicious,
        location,
        detail,
    }
}

fn tests_of(v: &PolicyVerdict) -> String {
    let names = v.rule_names();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// The combined spam verdict of a policy verdict (the rules' points and
/// the classifier's, whose probability is kept).
pub fn spam_result(v: &PolicyVerdict, classifier: Option<&SpamResult>) -> SpamResult {
    SpamResult {
        score: v.score,
        required: v.required,
        spam: v.spam,
        probability: classifier.map(|c| c.probability).unwrap_or(0.5),
        rules: v
            .hits
            .iter()
            .map(|h| mxguard_policy::RuleHit {
                name: h.name.clone(),
                points: h.points,
            })
            .collect(),
    }
}

/// The decisions of one policy verdict. `SPAM` under the implicit
/// `default` policy takes `[actions] spam` (so a config without policies
/// keeps its spam action); a named policy's `spam_action` is its own.
pub fn policy_decisions(v: &PolicyVerdict, a: &ActionConfig) -> (Vec<Decided>, Vec<Requested>) {
    let mut out = Vec::new();
    let mut notices: Vec<Requested> = Vec::new();
    let detail = |extra: &str| {
        let mut d = format!("policy {}", v.policy);
        if !extra.is_empty() {
            d.push_str("; ");
            d.push_str(extra);
        }
        d
    };
    for pa in &v.actions {
        let PolicyAction {
            action,
            rule,
            notices: ns,
        } = pa;
        for n in ns {
            let who = match n.to {
                NoticeTarget::Admin => crate::notify::Audience::Admin,
                NoticeTarget::Sender => crate::notify::Audience::Sender,
                NoticeTarget::Recipient => crate::notify::Audience::Recipient,
            };
            if !notices.iter().any(|(w, _)| *w == who) {
                notices.push((who, n.template.clone()));
            }
        }
        let spam_rule = rule == "SPAM" || rule == "SPAM_HIGH";
        let name = match rule.as_str() {
            "SPAM" => SPAM_FINDING.to_string(),
            "SPAM_HIGH" => SPAM_HIGH_FINDING.to_string(),
            r => format!("Policy.{r}"),
        };
        let score = format!(
            "score {:.2}, required {:.1} ({})",
            v.score,
            v.required,
            tests_of(v)
        );
        let what = if spam_rule { score.as_str() } else { "" };
        if rule == "SPAM" && v.policy == "default" {
            out.push(Decided {
                finding: policy_finding(name, String::new(), detail(what)),
                action: a.spam,
                param: Param::None,
            });
            continue;
        }
        use mxguard_policy::Action as P;
        let (act, param) = match action {
            P::Reject { text } => (Action::Reject, Param::Text(text.clone())),
            P::Tempfail { text } => (Action::Tempfail, Param::Text(text.clone())),
            P::Drop => (Action::Drop, Param::None),
            P::Quarantine => (Action::Quarantine, Param::None),
            P::Replace => (Action::Replace, Param::None),
            P::Redirect { to } => (Action::Redirect, Param::Address(to.clone())),
            P::Clean { locations } => {
                // One finding per part to remove; none → nothing to clean
                // (the pipeline quarantines rather than deliver it unchanged).
                if locations.is_empty() {
                    out.push(Decided {
                        finding: policy_finding(name.clone(), String::new(), detail(what)),
                        action: Action::Clean,
                        param: Param::None,
                    });
                }
                for l in locations {
                    out.push(Decided {
                        finding: policy_finding(name.clone(), l.clone(), detail(what)),
                        action: Action::Clean,
                        param: Param::None,
                    });
                }
                continue;
            }
            P::Warn { banner } => (Action::Warn, Param::Banner(banner.clone())),
            P::Tag { subject_tag } => (Action::Tag, Param::SubjectTag(subject_tag.clone())),
            P::Bcc { to } => (Action::Bcc, Param::Address(to.clone())),
            // `pass` already overrode the policy's other actions; it is
            // recorded, and delivers as is (nothing marked).
            P::Pass => (Action::Pass, Param::None),
        };
        out.push(Decided {
            finding: policy_finding(name, String::new(), detail(what)),
            action: act,
            param,
        });
    }
    (out, notices)
}

/// When a message's recipients fall under policies that decide
/// differently, each group's copy is handled apart; but one SMTP reply
/// answers for all of them. So with several groups, a group's `reject`
/// becomes `quarantine` (kept, releasable: nothing lost, no bounce to a
/// possibly forged sender), and a `tempfail` anywhere defers the whole
/// message (the sender retries for everyone). Returns the plan whose
/// tempfail defers the message, if any.
pub fn reconcile(plans: &mut [Plan]) -> Option<usize> {
    if plans.len() < 2 {
        return None;
    }
    if let Some(i) = plans
        .iter()
        .position(|p| p.action() == Some(Action::Tempfail))
    {
        return Some(i);
    }
    for p in plans.iter_mut() {
        for d in &mut p.decided {
            if d.action == Action::Reject {
                d.action = Action::Quarantine;
                d.param = Param::None;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxguard_policy::rules::Notice;
    use mxguard_policy::PolicyHit;

    fn verdict(policy: &str, actions: Vec<PolicyAction>) -> PolicyVerdict {
        PolicyVerdict {
            policy: policy.into(),
            recipients: vec!["a@example.com".into()],
            hits: vec![PolicyHit {
                name: "R".into(),
                group: String::new(),
                points: 6.0,
                action: None,
            }],
            score: 6.0,
            required: 5.0,
            spam: true,
            actions,
            allowed: false,
            denied: false,
        }
    }

    fn pa(action: mxguard_policy::Action, rule: &str) -> PolicyAction {
        PolicyAction {
            action,
            rule: rule.into(),
            notices: vec![],
        }
    }

    #[test]
    fn default_policy_spam_takes_the_actions_config() {
        let a = ActionConfig {
            spam: Action::Quarantine,
            ..Default::default()
        };
        let v = verdict(
            "default",
            vec![pa(
                mxguard_policy::Action::Tag {
                    subject_tag: Some("[SPAM]".into()),
                },
                "SPAM",
            )],
        );
        let (d, _) = policy_decisions(&v, &a);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].finding.name, SPAM_FINDING);
        assert_eq!(d[0].action, Action::Quarantine);
        assert!(d[0].finding.detail.contains("score 6.00"));
        // A named policy keeps its own.
        let v = verdict(
            "finance",
            vec![pa(
                mxguard_policy::Action::Tag {
                    subject_tag: Some("[SPAM]".into()),
                },
                "SPAM",
            )],
        );
        let (d, _) = policy_decisions(&v, &a);
        assert_eq!(d[0].action, Action::Tag);
        assert_eq!(d[0].param, Param::SubjectTag(Some("[SPAM]".into())));
    }

    #[test]
    fn clean_gives_one_finding_per_part_and_notices_are_kept() {
        let mut p = pa(
            mxguard_policy::Action::Clean {
                locations: vec!["1".into(), "2/zip:a.exe".into()],
            },
            "EXE",
        );
        p.notices = vec![
            Notice {
                to: NoticeTarget::Admin,
                template: "clean".into(),
            },
            Notice {
                to: NoticeTarget::Admin,
                template: "clean".into(),
            },
        ];
        let (d, n) = policy_decisions(&verdict("default", vec![p]), &ActionConfig::default());
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|x| x.finding.name == "Policy.EXE"));
        assert_eq!(d[1].finding.location, "2/zip:a.exe");
        assert_eq!(class_of(&d[0].finding), Class::Policy);
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn several_groups_turn_reject_into_quarantine_and_tempfail_defers_all() {
        let plan = |a: Action| Plan {
            rcpts: vec![],
            policy: None,
            decided: vec![Decided {
                finding: policy_finding("Policy.X".into(), String::new(), String::new()),
                action: a,
                param: Param::Text("no".into()),
            }],
            spam: None,
            notices: vec![],
            auth_header: None,
        };
        let mut one = [plan(Action::Reject)];
        assert_eq!(reconcile(&mut one), None);
        assert_eq!(one[0].action(), Some(Action::Reject));
        let mut two = [plan(Action::Reject), plan(Action::Tag)];
        assert_eq!(reconcile(&mut two), None);
        assert_eq!(two[0].action(), Some(Action::Quarantine));
        let mut t = [plan(Action::Tag), plan(Action::Tempfail)];
        assert_eq!(reconcile(&mut t), Some(1));
    }
}
