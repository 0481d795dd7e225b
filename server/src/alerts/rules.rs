//! Rules made ready to evaluate: checked once (a clear error for anything
//! wrong), their regular expressions compiled within a size limit, and
//! indexed so that a snapshot is matched against the rules that can match
//! it, not against every rule: a rule on an exact process name is found
//! by a hash lookup of each process's name.

use std::collections::HashMap;

use procmon_model::alerts::{AlertCondition, AlertRule, AlertRuleSpec, ProcessMatch, TextMatch};
use procmon_model::limits::{check_label, MAX_LABELS};
use procmon_model::{ProcessFacts, ProcessSample};

/// The most rules the store keeps: each is matched against every snapshot.
pub const MAX_RULES: usize = 10_000;
/// Longest rule name, in characters.
pub const MAX_NAME: usize = 200;
/// Longest text to match (or regular expression), in bytes.
pub const MAX_PATTERN: usize = 1024;
/// Most hosts one rule names, and channels it tells.
pub const MAX_LIST: usize = 1000;
/// The largest a compiled regular expression may be: enough for any
/// hand-written pattern, too small for one that explodes (`(a{100}){100}`).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Longest `for`, `clear` or repeat: 30 days.
pub const MAX_SECONDS: u64 = 30 * 24 * 60 * 60;

/// One text test, ready to run.
#[derive(Debug, Clone)]
enum Text {
    /// Lower-cased.
    Equals(String),
    /// Lower-cased.
    Contains(String),
    Regex(regex::Regex),
}

impl Text {
    fn compile(what: &str, m: &TextMatch) -> Result<Self, String> {
        let (kind, text) = match m {
            TextMatch::Equals(t) => ("equals", t),
            TextMatch::Contains(t) => ("contains", t),
            TextMatch::Regex(t) => ("regex", t),
        };
        if text.is_empty() {
            return Err(format!("{what}.{kind} is empty: give the text to match"));
        }
        if text.len() > MAX_PATTERN {
            return Err(format!(
                "{what}.{kind} is {} bytes long; at most {MAX_PATTERN}",
                text.len()
            ));
        }
        Ok(match m {
            TextMatch::Equals(t) => Self::Equals(t.to_lowercase()),
            TextMatch::Contains(t) => Self::Contains(t.to_lowercase()),
            TextMatch::Regex(t) => Self::Regex(
                regex::RegexBuilder::new(t)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("{what}.regex is not a valid regular expression: {e}"))?,
            ),
        })
    }

    /// Whether `text` (as sent; `lower` is it lower-cased) matches.
    fn matches(&self, text: &str, lower: &str) -> bool {
        match self {
            Self::Equals(t) => lower == t,
            Self::Contains(t) => lower.contains(t.as_str()),
            Self::Regex(r) => r.is_match(text),
        }
    }
}

/// A process's texts as matched: lower-cased once per process, however
/// many rules look at it.
pub struct ProcessTexts<'p> {
    name: &'p str,
    exe: &'p str,
    cmd: String,
    user: &'p str,
    name_lower: String,
    exe_lower: String,
    cmd_lower: String,
    user_lower: String,
}

impl<'p> ProcessTexts<'p> {
    pub fn of(process: &'p ProcessSample) -> Self {
        Self::new(
            &process.name,
            process.exe.as_deref(),
            &process.cmd,
            process.user.as_deref(),
        )
    }

    /// A process as history's changes tell of it.
    pub fn of_facts(process: &'p ProcessFacts) -> Self {
        Self::new(
            &process.name,
            process.exe.as_deref(),
            &process.cmd,
            process.user.as_deref(),
        )
    }

    fn new(name: &'p str, exe: Option<&'p str>, cmd: &[String], user: Option<&'p str>) -> Self {
        let (exe, user, cmd) = (exe.unwrap_or(""), user.unwrap_or(""), cmd.join(" "));
        Self {
            name_lower: name.to_lowercase(),
            exe_lower: exe.to_lowercase(),
            cmd_lower: cmd.to_lowercase(),
            user_lower: user.to_lowercase(),
            name,
            exe,
            cmd,
            user,
        }
    }

    /// The lower-cased name (the index's key).
    pub fn name(&self) -> &str {
        &self.name_lower
    }
}

/// Which processes a rule counts, ready to run.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: Option<Text>,
    exe: Option<Text>,
    cmd: Option<Text>,
    user: Option<Text>,
}

impl Matcher {
    fn compile(m: &ProcessMatch) -> Result<Self, String> {
        let part = |what: &str, t: &Option<TextMatch>| {
            t.as_ref().map(|t| Text::compile(what, t)).transpose()
        };
        let matcher = Self {
            name: part("process.name", &m.name)?,
            exe: part("process.exe", &m.exe)?,
            cmd: part("process.cmd", &m.cmd)?,
            user: part("process.user", &m.user)?,
        };
        if matcher.name.is_none()
            && matcher.exe.is_none()
            && matcher.cmd.is_none()
            && matcher.user.is_none()
        {
            return Err(
                "process matches nothing in particular: give at least one of name, exe, cmd, user"
                    .into(),
            );
        }
        Ok(matcher)
    }

    pub fn matches(&self, p: &ProcessTexts<'_>) -> bool {
        let test = |t: &Option<Text>, text: &str, lower: &str| {
            t.as_ref().is_none_or(|t| t.matches(text, lower))
        };
        test(&self.name, p.name, &p.name_lower)
            && test(&self.exe, p.exe, &p.exe_lower)
            && test(&self.cmd, &p.cmd, &p.cmd_lower)
            && test(&self.user, p.user, &p.user_lower)
    }

    /// The exact name, lower-cased, when the rule matches only processes of
    /// that name (so it can be found by name).
    fn exact_name(&self) -> Option<&str> {
        match &self.name {
            Some(Text::Equals(name)) => Some(name),
            _ => None,
        }
    }
}

/// A rule, checked and compiled.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub rule: AlertRule,
    /// For process rules.
    pub matcher: Option<Matcher>,
    /// Lower-cased host ids and hostnames; empty: every host.
    hosts: Vec<String>,
}

impl Compiled {
    /// Whether the rule applies to the host with this id, hostname and
    /// labels: one it names (or any, when it names none) that carries
    /// every label the rule asks for, ignoring case as names are.
    pub fn covers(&self, host_id: &str, hostname: &str, labels: &[String]) -> bool {
        let named = self.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host_id) || h.eq_ignore_ascii_case(hostname));
        named
            && self
                .rule
                .spec
                .host_labels
                .iter()
                .all(|wanted| labels.iter().any(|l| l.eq_ignore_ascii_case(wanted)))
    }
}

/// The process matcher of a condition, if it has one.
pub fn process_match(condition: &AlertCondition) -> Option<&ProcessMatch> {
    match condition {
        AlertCondition::ProcessAbsent { process }
        | AlertCondition::ProcessPresent { process }
        | AlertCondition::ProcessCount { process, .. }
        | AlertCondition::ProcessAbove { process, .. } => Some(process),
        AlertCondition::HostAbove { .. } | AlertCondition::HostOffline => None,
    }
}

/// Checks a rule as sent, and compiles its matcher: every error names the
/// field and says what is wrong.
pub fn check(spec: &AlertRuleSpec) -> Result<Option<Matcher>, String> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err("name is empty: give the rule a name people will recognise".into());
    }
    if spec.name.chars().count() > MAX_NAME {
        return Err(format!("name is longer than {MAX_NAME} characters"));
    }
    for (what, list) in [("hosts", &spec.hosts), ("channels", &spec.channels)] {
        if list.len() > MAX_LIST {
            return Err(format!(
                "{what} names {} entries; at most {MAX_LIST}",
                list.len()
            ));
        }
        if let Some(bad) = list.iter().find(|h| h.trim().is_empty() || h.len() > 256) {
            return Err(format!(
                "{what} has an entry {bad:?} that is empty or too long"
            ));
        }
    }
    if spec.host_labels.len() > MAX_LABELS {
        return Err(format!(
            "host_labels names {} labels; a host carries at most {MAX_LABELS}",
            spec.host_labels.len()
        ));
    }
    for label in &spec.host_labels {
        check_label(label).map_err(|why| format!("host_labels has {label:?}: {why}"))?;
    }
    for (what, seconds) in [
        ("for_seconds", Some(spec.for_seconds)),
        ("clear_seconds", Some(spec.clear_seconds)),
        ("repeat_seconds", spec.repeat_seconds),
    ] {
        if seconds.is_some_and(|s| s > MAX_SECONDS) {
            return Err(format!("{what} is more than 30 days ({MAX_SECONDS} s)"));
        }
    }
    if spec.repeat_seconds.is_some_and(|s| s < 60) {
        return Err(
            "repeat_seconds is under 60: repeats more often than a minute flood people".into(),
        );
    }
    let threshold = |above: f64, clear_below: Option<f64>| -> Result<(), String> {
        if !above.is_finite() {
            return Err("above must be a finite number".into());
        }
        match clear_below {
            Some(c) if !c.is_finite() => Err("clear_below must be a finite number".into()),
            Some(c) if c > above => Err(format!(
                "clear_below ({c}) is above the threshold ({above}): it must be at or below it"
            )),
            _ => Ok(()),
        }
    };
    match &spec.condition {
        AlertCondition::ProcessCount { min, max, .. } => match (min, max) {
            (None, None) => return Err("a process_count rule needs min, max or both".into()),
            (Some(lo), Some(hi)) if lo > hi => {
                return Err(format!("min ({lo}) is above max ({hi})"))
            }
            _ => {}
        },
        AlertCondition::ProcessAbove {
            above, clear_below, ..
        }
        | AlertCondition::HostAbove {
            above, clear_below, ..
        } => threshold(*above, *clear_below)?,
        _ => {}
    }
    process_match(&spec.condition)
        .map(Matcher::compile)
        .transpose()
}

/// Every rule, compiled, with the index that finds the process rules a
/// process can match.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Compiled>,
    /// Which load of the rules this is: a new number whenever they change,
    /// so what was matched against older rules is matched again.
    pub generation: u64,
    /// The rules as stored, to tell whether a reload changed anything.
    pub source: Vec<AlertRule>,
    /// Rules on an exact process name, by that name (lower-cased).
    by_name: HashMap<String, Vec<usize>>,
    /// Other process rules: matched against every process.
    scanned: Vec<usize>,
}

impl RuleSet {
    /// The enabled rules among `rules`. A stored rule that no longer
    /// compiles (a newer server stored it) is left out, with a warning.
    pub fn new(rules: Vec<AlertRule>) -> Self {
        let mut set = Self {
            source: rules.clone(),
            ..Self::default()
        };
        for rule in rules.into_iter().filter(|r| r.spec.enabled) {
            let matcher = match check(&rule.spec) {
                Ok(m) => m,
                Err(why) => {
                    tracing::warn!(rule = rule.id, "alert rule left out: {why}");
                    continue;
                }
            };
            let index = set.rules.len();
            if let Some(m) = &matcher {
                match m.exact_name() {
                    Some(name) => set.by_name.entry(name.to_owned()).or_default().push(index),
                    None => set.scanned.push(index),
                }
            }
            set.rules.push(Compiled {
                hosts: rule.spec.hosts.iter().map(|h| h.to_lowercase()).collect(),
                rule,
                matcher,
            });
        }
        set
    }

    /// The process rules `p` may match (then each is tested in full).
    pub fn candidates<'s>(&'s self, p: &ProcessTexts<'_>) -> impl Iterator<Item = usize> + 's {
        let named = self.by_name.get(p.name()).map(Vec::as_slice).unwrap_or(&[]);
        named.iter().chain(self.scanned.iter()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use procmon_model::alerts::Severity;

    fn spec(hosts: &[&str], host_labels: &[&str]) -> AlertRuleSpec {
        AlertRuleSpec {
            name: "nginx absent".into(),
            severity: Severity::Warning,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            host_labels: host_labels.iter().map(|l| l.to_string()).collect(),
            condition: AlertCondition::HostOffline,
            for_seconds: 0,
            clear_seconds: 0,
            repeat_seconds: None,
            channels: vec![],
            enabled: true,
        }
    }

    fn compiled(hosts: &[&str], host_labels: &[&str]) -> Compiled {
        let rule = AlertRule {
            id: "r".into(),
            version: 1,
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: chrono::DateTime::UNIX_EPOCH,
            updated_by: "admin".into(),
            spec: spec(hosts, host_labels),
        };
        let mut set = RuleSet::new(vec![rule]);
        assert_eq!(set.rules.len(), 1, "the rule compiles");
        set.rules.remove(0)
    }

    fn labels(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn a_rule_on_labels_covers_only_hosts_carrying_every_one() {
        let rule = compiled(&[], &["prod", "role=db"]);
        assert!(rule.covers("h1", "db1", &labels(&["role=db", "edge", "prod"])));
        // Compared ignoring case, as host names are.
        assert!(rule.covers("h1", "db1", &labels(&["PROD", "Role=DB"])));
        assert!(!rule.covers("h1", "db1", &labels(&["prod"])));
        assert!(!rule.covers("h1", "db1", &[]));
        // A label is whole: "prod" is not "production".
        assert!(!rule.covers("h1", "db1", &labels(&["production", "role=db"])));
    }

    #[test]
    fn with_hosts_too_a_host_must_be_named_and_carry_the_labels() {
        let rule = compiled(&["db1"], &["prod"]);
        assert!(rule.covers("h1", "db1", &labels(&["prod"])));
        assert!(!rule.covers("h1", "db1", &labels(&["staging"])));
        assert!(!rule.covers("h2", "db2", &labels(&["prod"])));
        // Without labels asked for, names alone decide; without either,
        // every host is covered.
        assert!(compiled(&["h2"], &[]).covers("h2", "db2", &[]));
        assert!(!compiled(&["h2"], &[]).covers("h1", "db1", &labels(&["prod"])));
        assert!(compiled(&[], &[]).covers("any", "host", &[]));
    }

    #[test]
    fn a_bad_host_label_is_refused_naming_the_field_and_label() {
        let error = check(&spec(&[], &["prod", "two words"])).unwrap_err();
        assert!(
            error.starts_with("host_labels has \"two words\": ' ' cannot be in a label"),
            "{error}"
        );
        let error = check(&spec(&[], &[""])).unwrap_err();
        assert!(error.starts_with("host_labels has \"\""), "{error}");
        let many: Vec<String> = (0..=MAX_LABELS).map(|i| format!("l{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let error = check(&spec(&[], &many)).unwrap_err();
        assert!(error.contains("host_labels names 33 labels"), "{error}");
        assert!(check(&spec(&[], &["prod", "role=db"])).is_ok());
    }
}
