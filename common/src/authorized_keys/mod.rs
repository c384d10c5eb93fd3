//! authorized_keys: which keys may log in as a user, with per-key options. Format:
//! `[options] keytype base64 [comment]`, e.g.
//! `from="10.0.0.0/8,!10.0.0.9",command="uptime",no-pty ssh-ed25519 AAAAC3Nza... ci@build`.
//!
//! API CONTRACT (mshd codes against these names; keep them):
//! - `parse::parse(text) -> Vec<ParsedLine>` pure; `AuthorizedKeys::load(path)`.
//! - `policy::authorize(files, key, peer_ip, now) -> AuthDecision`: the first entry whose key
//!   equals `key` and whose `from=` / `expiry-time=` admit the peer gives `Accept(Permissions)`.
//! - `policy::expand_tokens(pattern, user, home)` for `authorized_keys_files` (`%h`, `%u`, `%%`).
//! - `AuthorizedKeys::warnings()`: one `path:line: reason` per unusable line.
//! - `policy::authorize_cert_authority(files, ca, cert_principals, user, peer, now)`: the
//!   `cert-authority` (+ `principals=`) lines, for user certificates.
//! - `policy::match_from(list, peer)`: OpenSSH's `from=` matching on its own.
//! - `parse::quote_option_value(v)`: writes a value that parses back to `v`.
//!
//! Where msh is stricter than sshd: a `from=` entry containing `/` that is not a valid
//! network refuses the entry (sshd refuses host bits set and over-long masks, but treats other
//! such text as a pattern that never matches); a certificate line (`*-cert-v01@openssh.com`)
//! is reported as unusable, since it can never match a login.

pub mod options;
pub mod parse;
pub mod policy;

pub use options::{AllowedFlags, FlagOption, KeyOptions};
pub use parse::{parse, AuthorizedKey, AuthorizedKeys, ParsedLine};
pub use policy::{
    authorize, authorize_cert_authority, expand_tokens, match_from, try_expand_tokens,
    AuthDecision, FromMatch, Permissions,
};
