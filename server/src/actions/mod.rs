//! Acting on a process from the page: the server's half (see
//! `procmon_model::actions` for the whole path). An operator's request is
//! checked against the host's newest snapshot, signed with the database's
//! key ([`sign`]), kept in the audit log, and handed to the host's agent
//! when it asks; the agent reports how it ended.

pub mod sign;

pub use sign::ActionSigner;
