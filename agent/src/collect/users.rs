//! User ids to names, cached: the user list is read once and again only when
//! an id turns up that it does not know (at most every [`RELOAD_AFTER`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sysinfo::{Uid, Users};

/// Users are created rarely; re-reading the list for every unknown id of a
/// snapshot would cost more than the snapshot itself.
const RELOAD_AFTER: Duration = Duration::from_secs(30);

pub(super) struct UserNames {
    users: Users,
    known: HashMap<Uid, String>,
    loaded_at: Option<Instant>,
}

impl UserNames {
    /// The list is read on the first lookup, not here: on Windows the
    /// owner comes from the process token and the list is rarely needed
    /// (and sysinfo's reading of it trips a debug assertion under Wine).
    pub(super) fn new() -> Self {
        UserNames {
            users: Users::new().expect("sysinfo supports users where it supports processes"),
            known: HashMap::new(),
            loaded_at: None,
        }
    }

    /// The name of `uid`, or the id itself (as `ps` shows it) when no user
    /// of that id exists, e.g. inside a container with its own id range.
    pub(super) fn name_of(&mut self, uid: &Uid) -> String {
        if let Some(name) = self.known.get(uid) {
            return name.clone();
        }
        let stale = self.loaded_at.is_none_or(|at| at.elapsed() >= RELOAD_AFTER);
        if self.users.get_user_by_id(uid).is_none() && stale {
            self.users.refresh();
            self.loaded_at = Some(Instant::now());
        }
        match self.users.get_user_by_id(uid) {
            Some(user) => {
                let name = user.name().to_owned();
                self.known.insert(uid.clone(), name.clone());
                name
            }
            // Not cached, so a user created later is still found on reload.
            None => (**uid).to_string(),
        }
    }
}
