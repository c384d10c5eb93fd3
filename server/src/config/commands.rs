//! `authorized_keys_command` and `authorized_principals_command` (sshd's AuthorizedKeysCommand
//! and AuthorizedPrincipalsCommand): the command line split into arguments as sshd's
//! `argv_split` does (no shell), its `%` tokens, and the checks made when the config is read
//! (absolute program path, known tokens, balanced quotes, a run-as user in root mode).
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::{bail, Result};

/// Which of the two commands: they differ in their tokens and in the words of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// `authorized_keys_command`: prints authorized_keys lines.
    Keys,
    /// `authorized_principals_command`: prints authorized_principals_file lines.
    Principals,
}

impl CommandKind {
    /// The config key, as the log and errors name it.
    pub fn key(self) -> &'static str {
        match self {
            CommandKind::Keys => "authorized_keys_command",
            CommandKind::Principals => "authorized_principals_command",
        }
    }

    /// The tokens sshd_config(5) lists for the command's arguments (`%%` aside).
    pub fn tokens(self) -> &'static str {
        match self {
            CommandKind::Keys => "fhktUu",
            CommandKind::Principals => "FfhiKkstTUu",
        }
    }

    fn token_help(self) -> &'static str {
        match self {
            CommandKind::Keys => {
                "%u user, %U uid, %h home, %f key fingerprint, %k base64 key, %t key type, %% percent"
            }
            CommandKind::Principals => {
                "%u user, %U uid, %h home, %f certificate fingerprint, %k base64 certificate, \
                 %t certificate type, %i key id, %s serial, %F CA fingerprint, %K base64 CA key, \
                 %T CA key type, %% percent"
            }
        }
    }
}

/// A configured command, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityCommand {
    /// The command line as written.
    pub command: String,
    /// The account it runs as (root mode; unprivileged mshd runs it as itself).
    pub user: Option<String>,
    /// How long it may run before it is killed and admits nobody.
    pub timeout: Duration,
}

/// Splits a command line into arguments as OpenSSH's `argv_split` (misc.c): blanks separate
/// arguments; single or double quotes group (the quotes are removed); a backslash escapes a
/// quote, a backslash, or (outside quotes) a blank, and is kept before anything else. No
/// shell is involved: `$`, `;`, `|`, globs are ordinary characters. An unclosed quote is an
/// error.
pub fn argv_split(s: &str) -> std::result::Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if matches!(chars.get(i), Some(' ' | '\t')) {
            i += 1;
            continue;
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.get(i) {
            match c {
                '\\' => {
                    let next = chars.get(i + 1).copied();
                    match next {
                        Some(n @ ('\'' | '"' | '\\')) => {
                            arg.push(n);
                            i += 1;
                        }
                        Some(' ') if quote.is_none() => {
                            arg.push(' ');
                            i += 1;
                        }
                        _ => arg.push('\\'),
                    }
                }
                ' ' | '\t' if quote.is_none() => break,
                '"' | '\'' if quote.is_none() => quote = Some(c),
                c if Some(c) == quote => quote = None,
                c => arg.push(c),
            }
            i += 1;
        }
        if quote.is_some() {
            return Err("unclosed quote".to_string());
        }
        args.push(arg);
    }
    Ok(args)
}

/// Replaces `%X` tokens in `arg` with `value(X)`; `None` from `value` (an unknown token) or a
/// trailing `%` is an error naming it.
pub fn expand(
    arg: &str,
    value: impl Fn(char) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut chars = arg.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match value(t) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("unknown token %{t} in {arg:?}")),
            },
            None => {
                return Err(format!(
                    "{arg:?} ends with a lone % (write %% for a percent sign)"
                ))
            }
        }
    }
    Ok(out)
}

/// Checks a command line: it splits, its program is an absolute path, its arguments use only
/// the kind's tokens. `"none"` (sshd's spelling of "not set") and absence give `None`.
pub fn check_command(kind: CommandKind, text: &str) -> Result<Option<Vec<String>>> {
    if text.trim() == "none" {
        return Ok(None);
    }
    let argv = argv_split(text).map_err(|e| {
        anyhow::anyhow!("{e} in {text:?}: arguments are split as sshd does, without a shell")
    })?;
    let Some(program) = argv.first() else {
        bail!(
            "empty command: give the absolute path of a program, e.g. \"/usr/local/bin/keys %u\""
        );
    };
    if !program.starts_with('/') {
        bail!(
            "{program:?} is not an absolute path: the program must be named by its absolute path \
             (no shell or PATH lookup is involved)"
        );
    }
    let tokens = kind.tokens();
    for arg in argv.iter().skip(1) {
        expand(arg, |t| tokens.contains(t).then(String::new))
            .map_err(|e| anyhow::anyhow!("{e} (known: {})", kind.token_help()))?;
    }
    Ok(Some(argv))
}

/// Resolves one command's three keys (`command`, `user`, `timeout`, as written) into the
/// effective setting. `where_` names a key at its file:line. In root mode a command without a
/// user is refused, as sshd refuses to start; unprivileged, the command runs as mshd's own
/// user and a configured user is ignored (see [`ignored_user_note`]).
pub fn resolve(
    kind: CommandKind,
    command: Option<&str>,
    user: Option<&str>,
    timeout: Option<&str>,
    where_: &dyn Fn(&str) -> String,
) -> Result<Option<IdentityCommand>> {
    let user_key = format!("{}_user", kind.key());
    let timeout_key = format!("{}_timeout", kind.key());
    let timeout = match timeout {
        None => Duration::from_secs(30),
        Some(t) => {
            let d = msh_common::duration::parse_duration(t)
                .map_err(|e| anyhow::anyhow!("{}: {e}", where_(&timeout_key)))?;
            if d.is_zero() {
                bail!(
                    "{}: must be more than 0 (a command with no time to run admits nobody)",
                    where_(&timeout_key)
                );
            }
            d
        }
    };
    if let Some(u) = user {
        if u.trim().is_empty() || u.contains(['/', ':', '\n', '\0']) {
            bail!("{}: {u:?} is not a user name", where_(&user_key));
        }
    }
    let Some(text) = command else {
        return Ok(None);
    };
    if check_command(kind, text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", where_(kind.key())))?
        .is_none()
    {
        return Ok(None);
    }
    Ok(Some(IdentityCommand {
        command: text.to_string(),
        user: user.map(str::to_string),
        timeout,
    }))
}

/// Root mode needs the run-as user (sshd refuses to start without it).
pub fn require_user(
    kind: CommandKind,
    cmd: &IdentityCommand,
    root_mode: bool,
    where_: &dyn Fn(&str) -> String,
) -> Result<()> {
    if root_mode && cmd.user.is_none() {
        bail!(
            "{}: {} is set but {}_user is not; name the unprivileged account the command runs as \
             (a dedicated one, as sshd recommends; never root)",
            where_(kind.key()),
            kind.key(),
            kind.key()
        );
    }
    Ok(())
}

/// The start-up note for an unprivileged mshd given a run-as user: it is not used.
pub fn ignored_user_note(kind: CommandKind, cmd: &IdentityCommand) -> Option<String> {
    cmd.user.as_ref().map(|u| {
        format!(
            "{}_user = {u:?} is ignored: mshd runs unprivileged, so {} runs as mshd's own user",
            kind.key(),
            kind.key()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_split_as_sshd() {
        let s = |t: &str| argv_split(t).unwrap();
        assert_eq!(s("/bin/x  a\tb"), ["/bin/x", "a", "b"]);
        assert_eq!(s("/bin/x 'a b' \"c d\""), ["/bin/x", "a b", "c d"]);
        assert_eq!(
            s(r"/bin/x a\ b \\ \' \q"),
            ["/bin/x", "a b", "\\", "'", "\\q"]
        );
        assert_eq!(s(r#"/bin/x "a\"b" 'x"y'"#), ["/bin/x", "a\"b", "x\"y"]);
        assert_eq!(s("/bin/x $(id);|"), ["/bin/x", "$(id);|"]);
        assert_eq!(s("  "), Vec::<String>::new());
        assert!(argv_split("/bin/x 'a").is_err());
    }

    #[test]
    fn check_command_wants_an_absolute_program_and_known_tokens() {
        let k = CommandKind::Keys;
        assert_eq!(
            check_command(k, "/usr/bin/k %u %U %h %f %k %t %%").unwrap(),
            Some(
                ["/usr/bin/k", "%u", "%U", "%h", "%f", "%k", "%t", "%%"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(check_command(k, "none").unwrap(), None);
        let e = check_command(k, "keys %u").unwrap_err().to_string();
        assert!(e.contains("not an absolute path"), "{e}");
        let e = check_command(k, "/k %i").unwrap_err().to_string();
        assert!(e.contains("unknown token %i"), "{e}");
        let e = check_command(k, "/k 50%").unwrap_err().to_string();
        assert!(e.contains("lone %"), "{e}");
        assert!(check_command(CommandKind::Principals, "/p %i %s %F %K %T").is_ok());
        assert!(check_command(k, "").is_err());
    }

    #[test]
    fn resolve_defaults_and_errors() {
        let w = |k: &str| format!("m.toml:1: key `{k}`");
        let k = CommandKind::Keys;
        let c = resolve(k, Some("/k"), Some("nobody"), None, &w)
            .unwrap()
            .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert!(require_user(k, &c, true, &w).is_ok());
        let c = resolve(k, Some("/k"), None, Some("2s"), &w)
            .unwrap()
            .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(2));
        let e = require_user(k, &c, true, &w).unwrap_err().to_string();
        assert!(e.contains("authorized_keys_command_user is not"), "{e}");
        assert!(require_user(k, &c, false, &w).is_ok());
        let e = resolve(k, Some("/k"), None, Some("x"), &w).unwrap_err();
        assert!(
            e.to_string().contains("authorized_keys_command_timeout"),
            "{e}"
        );
        assert_eq!(resolve(k, None, Some("u"), None, &w).unwrap(), None);
    }

    #[test]
    fn settings_need_a_user_in_root_mode_and_print_back_the_same() {
        use crate::config::{parse_file, Overrides, Settings};
        use std::path::Path;
        let text = "max_sessions = 3\n\
            authorized_keys_command = \"/usr/bin/k %u '%f x'\"\n\
            authorized_keys_command_user = \"nobody\"\n\
            authorized_principals_command = \"/usr/bin/p\"\n\
            authorized_principals_command_timeout = \"5s\"\n";
        let resolve = |text: &str, root: bool| {
            let f = parse_file(text, Path::new("m.toml")).unwrap();
            Settings::resolve(f, Path::new("m.toml"), &Overrides::default(), root)
        };
        // Root mode: the principals command has no user.
        let e = format!("{:#}", resolve(text, true).unwrap_err());
        assert!(
            e.starts_with("m.toml:4: key `authorized_principals_command`"),
            "{e}"
        );
        assert!(
            e.contains("authorized_principals_command_user is not"),
            "{e}"
        );
        // Unprivileged: runs as mshd's user; a configured user is noted as ignored.
        let s = resolve(text, false).unwrap();
        let k = s.keys_command().unwrap();
        assert_eq!(k.command, "/usr/bin/k %u '%f x'");
        assert_eq!(k.timeout, Duration::from_secs(30));
        assert_eq!(
            s.principals_command().unwrap().timeout,
            Duration::from_secs(5)
        );
        let notes = s.startup_notes();
        assert!(
            notes
                .iter()
                .any(|n| n.contains("authorized_keys_command_user = \"nobody\" is ignored")),
            "{notes:?}"
        );
        let again = resolve(&s.to_toml().unwrap(), false).unwrap();
        assert_eq!(again.keys_command(), s.keys_command());
        assert_eq!(again.principals_command(), s.principals_command());
        let e = format!(
            "{:#}",
            resolve("\nauthorized_keys_command = \"k %u\"\n", false).unwrap_err()
        );
        assert!(
            e.starts_with("m.toml:2: key `authorized_keys_command`"),
            "{e}"
        );
        assert!(e.contains("not an absolute path"), "{e}");
    }
}
