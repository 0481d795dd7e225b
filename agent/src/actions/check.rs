//! Whether the agent may act on a signed action, checked in a fixed order,
//! each refusal saying exactly why: the pinned key, the signature, the
//! host, the expiry, the nonce, this agent's config, the target.
//! What remains after these, the target's start time, the OS half checks
//! as it acts ([`super::act`]).

use std::collections::HashMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use procmon_model::actions::{ActionResultCode, SignedAction, ACTION_LIFETIME_SECS};

use super::{ActionSettings, ServerKey};

/// How far the server's clock and this machine's may be apart for an
/// action to count as within its time. A few seconds: enough for clocks
/// kept by NTP and a slow network, while an action still expires about
/// when the server says (a minute after it was signed).
pub const CLOCK_LEEWAY: Duration = Duration::seconds(5);

/// Why an action was not carried out: the code for the report and a
/// message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: ActionResultCode,
    pub message: String,
}

impl Refused {
    fn new(code: ActionResultCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The checks, and what they remember between actions: the nonces acted
/// on, each until its action has expired.
#[derive(Debug)]
pub struct Checker {
    settings: ActionSettings,
    /// When this agent started. An action signed before it is refused:
    /// the nonces are remembered in memory only, so an agent that
    /// restarted cannot tell whether it acted on one of those already; no
    /// action signed before the start means no replay across a restart
    /// (an action lives a minute, so this costs at most the actions of the
    /// minute before a restart).
    started_at: DateTime<Utc>,
    /// Nonce -> when it may be forgotten (its action's expiry and the
    /// leeway: after that the action is refused as expired anyway).
    seen: HashMap<String, DateTime<Utc>>,
}

impl Checker {
    /// Checks under `settings` for an agent that started at `started_at`.
    pub fn new(settings: ActionSettings, started_at: DateTime<Utc>) -> Self {
        Self {
            settings,
            started_at,
            seen: HashMap::new(),
        }
    }

    /// Whether `action` may be carried out now (`now`, this machine's
    /// clock) by the agent of host `host_id`, trusting `key`. A nonce that
    /// passes the expiry checks is remembered, so the same action is never
    /// carried out twice, whatever the later checks say.
    pub fn check(
        &mut self,
        action: &SignedAction,
        key: Option<&ServerKey>,
        host_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        use ActionResultCode as Code;
        let Some(key) = key else {
            return Err(Refused::new(
                Code::NoPinnedKey,
                "this agent has no pinned server key, so it trusts no action: enroll it \
                 (enrollment saves the server's key) or set server_key in [actions] of its \
                 config to what `procmon-server action-key` prints",
            ));
        };
        key.verify(&action.signing_bytes(), &action.signature)
            .map_err(|why| {
                Refused::new(
                    Code::BadSignature,
                    format!("{why}: it was not signed by the server this agent trusts, or was changed on the way"),
                )
            })?;
        if action.host_id != host_id {
            return Err(Refused::new(
                Code::WrongHost,
                format!(
                    "the action is for host {}, and this is host {host_id}",
                    action.host_id
                ),
            ));
        }
        self.check_time(action, now)?;
        self.check_once(action, now)?;
        if !self.settings.enabled {
            return Err(Refused::new(
                Code::Disabled,
                "actions are not enabled on this agent: its config has no `enabled = true` in \
                 [actions] (a server's own agent: no `embedded_agent_actions`)",
            ));
        }
        if !self.settings.allow.contains(&action.kind) {
            let allowed = if self.settings.allow.is_empty() {
                "none".to_owned()
            } else {
                let names: Vec<&str> = self.settings.allow.iter().map(|k| k.as_str()).collect();
                names.join(", ")
            };
            return Err(Refused::new(
                Code::NotAllowed,
                format!(
                    "{} is not allowed on this agent: `allow` in [actions] of its config lists {allowed}",
                    action.kind
                ),
            ));
        }
        if let Some(why) = super::critical(action.pid) {
            return Err(Refused::new(Code::Critical, why));
        }
        Ok(())
    }

    fn check_time(&self, action: &SignedAction, now: DateTime<Utc>) -> Result<(), Refused> {
        let lifetime = action.expires_at - action.issued_at;
        if lifetime > Duration::seconds(ACTION_LIFETIME_SECS) + CLOCK_LEEWAY {
            // The nonces are remembered until expiry: a far expiry would
            // make the agent remember them for that long.
            return Err(Refused::new(
                ActionResultCode::Expired,
                format!(
                    "it is valid for {} s (from {} to {}), longer than the {ACTION_LIFETIME_SECS} s \
                     an action may be",
                    lifetime.num_seconds(),
                    time(action.issued_at),
                    time(action.expires_at)
                ),
            ));
        }
        if now > action.expires_at + CLOCK_LEEWAY {
            return Err(Refused::new(
                ActionResultCode::Expired,
                format!(
                    "it expired at {}, and it is {} on this machine (more than {} s later; if \
                     that is wrong, this machine's clock or the server's is off)",
                    time(action.expires_at),
                    time(now),
                    CLOCK_LEEWAY.num_seconds()
                ),
            ));
        }
        Ok(())
    }

    fn check_once(&mut self, action: &SignedAction, now: DateTime<Utc>) -> Result<(), Refused> {
        if action.issued_at < self.started_at - CLOCK_LEEWAY {
            return Err(Refused::new(
                ActionResultCode::Replayed,
                format!(
                    "it was signed at {}, before this agent started at {}: an agent does not \
                     remember across a restart which actions it carried out, so it takes none \
                     signed before it started",
                    time(action.issued_at),
                    time(self.started_at)
                ),
            ));
        }
        self.seen.retain(|_, forget_at| *forget_at >= now);
        if self.seen.contains_key(&action.nonce) {
            return Err(Refused::new(
                ActionResultCode::Replayed,
                format!(
                    "this agent has had an action with nonce {} already; it acts on each once",
                    action.nonce
                ),
            ));
        }
        self.seen
            .insert(action.nonce.clone(), action.expires_at + CLOCK_LEEWAY);
        Ok(())
    }
}

/// A time as the messages give it: RFC 3339, to the second unless finer.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use procmon_model::actions::ActionKind;
    use uuid::Uuid;

    use super::*;

    const HOST: &str = "host-1";

    fn signer() -> SigningKey {
        SigningKey::from_bytes(&[42; 32])
    }

    fn pinned() -> ServerKey {
        ServerKey::from_verifying_key(signer().verifying_key())
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Issued now, good for a minute, for this host.
    fn action(kind: ActionKind, pid: u32, now: DateTime<Utc>) -> SignedAction {
        let mut action = SignedAction {
            id: Uuid::new_v4(),
            host_id: HOST.to_owned(),
            pid,
            started_at: at("2026-12-07T10:00:00Z"),
            kind,
            nonce: Uuid::new_v4().simple().to_string(),
            issued_at: now,
            expires_at: now + Duration::seconds(ACTION_LIFETIME_SECS),
            signature: String::new(),
        };
        sign(&mut action, &signer());
        action
    }

    fn sign(action: &mut SignedAction, key: &SigningKey) {
        use base64::Engine;
        let signature = key.sign(&action.signing_bytes());
        action.signature = base64::engine::general_purpose::STANDARD.encode(signature.to_bytes());
    }

    fn enabled() -> ActionSettings {
        ActionSettings {
            enabled: true,
            ..ActionSettings::default()
        }
    }

    /// A pid nothing protects: a process this test starts.
    struct Sleeper(std::process::Child);
    impl Sleeper {
        fn start() -> Self {
            Self(
                std::process::Command::new("sleep")
                    .arg("60")
                    .spawn()
                    .unwrap(),
            )
        }
        fn pid(&self) -> u32 {
            self.0.id()
        }
    }
    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn refusal(
        checker: &mut Checker,
        action: &SignedAction,
        now: DateTime<Utc>,
    ) -> (ActionResultCode, String) {
        let refused = checker
            .check(action, Some(&pinned()), HOST, now)
            .expect_err("refused");
        (refused.code, refused.message)
    }

    #[test]
    fn an_action_that_passes_every_check_may_be_carried_out() {
        let sleeper = Sleeper::start();
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let a = action(ActionKind::Terminate, sleeper.pid(), now);
        assert_eq!(checker.check(&a, Some(&pinned()), HOST, now), Ok(()));
    }

    #[test]
    fn without_a_pinned_key_nothing_is_trusted() {
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let a = action(ActionKind::Terminate, 4242, now);
        let refused = checker.check(&a, None, HOST, now).unwrap_err();
        assert_eq!(refused.code, ActionResultCode::NoPinnedKey);
        assert!(
            refused.message.contains("server_key"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn a_signature_by_another_key_or_over_other_fields_is_refused() {
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let mut other = action(ActionKind::Terminate, 4242, now);
        sign(&mut other, &SigningKey::from_bytes(&[9; 32]));
        let (code, message) = refusal(&mut checker, &other, now);
        assert_eq!(code, ActionResultCode::BadSignature);
        assert!(
            message.contains("does not verify against the pinned server key ed25519:"),
            "{message}"
        );

        let mut changed = action(ActionKind::Suspend, 4242, now);
        changed.kind = ActionKind::Kill;
        assert_eq!(
            refusal(&mut checker, &changed, now).0,
            ActionResultCode::BadSignature
        );

        let mut garbled = action(ActionKind::Suspend, 4242, now);
        garbled.signature = "not base64 at all!".into();
        let (code, message) = refusal(&mut checker, &garbled, now);
        assert_eq!(code, ActionResultCode::BadSignature);
        assert!(message.contains("not standard base64"), "{message}");
    }

    #[test]
    fn an_action_for_another_host_is_refused_naming_both() {
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let mut a = action(ActionKind::Terminate, 4242, now);
        a.host_id = "host-2".into();
        sign(&mut a, &signer());
        let (code, message) = refusal(&mut checker, &a, now);
        assert_eq!(code, ActionResultCode::WrongHost);
        assert_eq!(
            message,
            "the action is for host host-2, and this is host host-1"
        );
    }

    #[test]
    fn an_expired_action_is_refused_past_the_leeway_only() {
        let issued = at("2026-12-07T10:00:00Z");
        let mut checker = Checker::new(enabled(), issued);
        let sleeper = Sleeper::start();
        let a = action(ActionKind::Terminate, sleeper.pid(), issued);
        let late = a.expires_at + CLOCK_LEEWAY + Duration::milliseconds(1);
        let (code, message) = refusal(&mut checker, &a, late);
        assert_eq!(code, ActionResultCode::Expired);
        assert!(
            message.starts_with(
                "it expired at 2026-12-07T10:01:00Z, and it is 2026-12-07T10:01:05.001Z"
            ),
            "{message}"
        );
        // Within the leeway a clock a little ahead still takes it.
        let just = a.expires_at + CLOCK_LEEWAY;
        assert_eq!(checker.check(&a, Some(&pinned()), HOST, just), Ok(()));
    }

    #[test]
    fn an_action_valid_for_longer_than_an_action_may_be_is_refused() {
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let mut a = action(ActionKind::Terminate, 4242, now);
        a.expires_at = now + Duration::hours(1);
        sign(&mut a, &signer());
        let (code, message) = refusal(&mut checker, &a, now);
        assert_eq!(code, ActionResultCode::Expired);
        assert!(message.contains("valid for 3600 s"), "{message}");
    }

    #[test]
    fn a_nonce_is_acted_on_once() {
        let sleeper = Sleeper::start();
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let a = action(ActionKind::Suspend, sleeper.pid(), now);
        assert_eq!(checker.check(&a, Some(&pinned()), HOST, now), Ok(()));
        let (code, message) = refusal(&mut checker, &a, now + Duration::seconds(1));
        assert_eq!(code, ActionResultCode::Replayed);
        assert!(message.contains(&a.nonce), "{message}");
        // Another action with the same nonce: the same.
        let mut again = action(ActionKind::Resume, sleeper.pid(), now);
        again.nonce = a.nonce.clone();
        sign(&mut again, &signer());
        assert_eq!(
            refusal(&mut checker, &again, now).0,
            ActionResultCode::Replayed
        );
        // A nonce refused for a later reason still counts as had.
        let disabled = &mut Checker::new(ActionSettings::default(), now);
        let b = action(ActionKind::Suspend, sleeper.pid(), now);
        assert_eq!(refusal(disabled, &b, now).0, ActionResultCode::Disabled);
        assert_eq!(refusal(disabled, &b, now).0, ActionResultCode::Replayed);
    }

    #[test]
    fn nonces_are_forgotten_once_their_action_has_expired() {
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let sleeper = Sleeper::start();
        checker
            .check(
                &action(ActionKind::Suspend, sleeper.pid(), now),
                Some(&pinned()),
                HOST,
                now,
            )
            .unwrap();
        assert_eq!(checker.seen.len(), 1);
        let later = now + Duration::seconds(ACTION_LIFETIME_SECS) + CLOCK_LEEWAY * 2;
        checker
            .check(
                &action(ActionKind::Suspend, sleeper.pid(), later),
                Some(&pinned()),
                HOST,
                later,
            )
            .unwrap();
        assert_eq!(checker.seen.len(), 1, "the first nonce is forgotten");
    }

    #[test]
    fn an_action_signed_before_the_agent_started_is_refused() {
        let started = at("2026-12-07T10:00:30Z");
        let mut checker = Checker::new(enabled(), started);
        let a = action(ActionKind::Terminate, 4242, at("2026-12-07T10:00:00Z"));
        let (code, message) = refusal(&mut checker, &a, started);
        assert_eq!(code, ActionResultCode::Replayed);
        assert!(
            message.starts_with("it was signed at 2026-12-07T10:00:00Z, before this agent started at 2026-12-07T10:00:30Z"),
            "{message}"
        );
        // Within the leeway of the start (a server clock a little behind)
        // it is taken.
        let sleeper = Sleeper::start();
        let b = action(ActionKind::Terminate, sleeper.pid(), started - CLOCK_LEEWAY);
        assert_eq!(checker.check(&b, Some(&pinned()), HOST, started), Ok(()));
    }

    #[test]
    fn a_disabled_agent_refuses_every_kind() {
        let now = Utc::now();
        let mut checker = Checker::new(ActionSettings::default(), now);
        for kind in ActionKind::ALL {
            let (code, message) = refusal(&mut checker, &action(kind, 4242, now), now);
            assert_eq!(code, ActionResultCode::Disabled, "{kind}");
            assert!(message.contains("enabled = true"), "{message}");
        }
    }

    #[test]
    fn a_kind_not_in_the_allowlist_is_refused_listing_what_is() {
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let a = action(ActionKind::LowerPriority, 4242, now);
        let (code, message) = refusal(&mut checker, &a, now);
        assert_eq!(code, ActionResultCode::NotAllowed);
        assert_eq!(
            message,
            "lower_priority is not allowed on this agent: `allow` in [actions] of its config \
             lists terminate, kill, suspend, resume"
        );
        let mut none = Checker::new(
            ActionSettings {
                enabled: true,
                allow: Vec::new(),
            },
            now,
        );
        let (_, message) = refusal(&mut none, &action(ActionKind::Kill, 4242, now), now);
        assert!(message.ends_with("lists none"), "{message}");
    }

    #[test]
    fn the_agent_itself_is_never_a_target() {
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let me = std::process::id();
        let (code, message) = refusal(&mut checker, &action(ActionKind::Kill, me, now), now);
        assert_eq!(code, ActionResultCode::Critical);
        assert_eq!(
            message,
            format!("pid {me} is this agent itself: it does not act on itself")
        );
        let (code, _) = refusal(&mut checker, &action(ActionKind::Kill, 0, now), now);
        assert_eq!(code, ActionResultCode::Critical);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn init_kthreadd_kernel_threads_and_the_agents_threads_are_never_targets() {
        let now = Utc::now();
        let mut checker = Checker::new(enabled(), now);
        let mut critical = |pid: u32| {
            let (code, message) = refusal(&mut checker, &action(ActionKind::Kill, pid, now), now);
            assert_eq!(code, ActionResultCode::Critical, "pid {pid}: {message}");
            message
        };
        assert!(critical(1).starts_with("pid 1 is init"), "pid 1");
        assert!(critical(2).starts_with("pid 2 is kthreadd"), "pid 2");
        let kernel_thread = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|&pid| {
                pid > 2
                    && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                        stat.rsplit(") ")
                            .next()
                            .is_some_and(|rest| rest.split(' ').nth(1) == Some("2"))
                    })
            })
            .expect("a kernel thread (a child of kthreadd)");
        let message = critical(kernel_thread);
        assert!(message.contains("is a kernel thread"), "{message}");

        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(500));
        });
        let tid = rx.recv().unwrap();
        let message = critical(tid);
        assert!(message.contains("a thread of this agent"), "{message}");
        thread.join().unwrap();
    }
}
