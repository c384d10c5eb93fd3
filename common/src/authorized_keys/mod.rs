//! authorized_keys: which keys may log in as a user, with per-key options. Format:
//! `[options] keytype base64 [comment]`, e.g.
//! `from="10.0.0.0/8,!10.0.0.9",command="uptime",no-pty ssh-ed25519 AAAAC3Nza... ci@build`.
//!
//! API CONTRACT (mshd codes against these names; keep them):
//! - `parse::parse(text) -> Vec<ParsedLine>` pure; `AuthorizedKeys::load(path)`.
//! - `policy::authorize(files, key, peer_ip, now) -> AuthDecision`: the first entry whose key
//!   equals `key` and whose `from=` / `expiry-time=` admit the peer gives `Accept(Permissions)`.

pub mod options;
pub mod parse;
pub mod policy;

pub use options::KeyOptions;
pub use parse::{AuthorizedKey, AuthorizedKeys, ParsedLine};
pub use policy::{authorize, AuthDecision, Permissions};
