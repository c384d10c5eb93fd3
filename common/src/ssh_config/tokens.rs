//! Token expansion in ssh_config values, as ssh_config(5) TOKENS: `HostName` takes `%h`
//! and `%%`; IdentityFile, CertificateFile and UserKnownHostsFile take `%%`, `%d`, `%h`,
//! `%i`, `%k`, `%L`, `%l`, `%n`, `%p`, `%r`, `%u` and `${VAR}` (an environment variable).
//!
//! Pure but for `${VAR}`, which reads the environment: every other value is given in
//! [`PathTokens`].

use std::path::Path;

use crate::{Error, Result};

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

/// Copies `text` with each `%X` token replaced by what `token` appends for `Some(X)`; a `%`
/// at the very end is `token(None)`. `token` refuses a token by returning an error.
pub(crate) fn expand_percent(
    text: &str,
    mut token: impl FnMut(Option<char>, &mut String) -> Result<()>,
) -> Result<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            token(chars.next(), &mut out)?;
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// HostName's value with `%h` (the name given) and `%%` expanded; ssh knows no other token
/// here.
pub fn expand_host_name(v: &str, host: &str) -> Result<String> {
    let out = expand_percent(v, |token, out| {
        match token {
            Some('h') => out.push_str(host),
            Some('%') => out.push('%'),
            Some(t) => {
                return Err(invalid(format!(
                    "unknown token %{t} (HostName expands only %h and %%)"
                )))
            }
            None => {
                return Err(invalid(
                    "a lone % at the end (write %% for a percent sign)".to_string(),
                ))
            }
        }
        Ok(())
    })?;
    if out.is_empty() || out.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("expected one host name or address".to_string()));
    }
    Ok(out)
}

/// What ssh_config's path tokens stand for (ssh_config(5) TOKENS; IdentityFile,
/// CertificateFile and UserKnownHostsFile take %%, %d, %h, %i, %k, %L, %l, %n, %p, %r, %u).
#[derive(Debug, Clone, Copy)]
pub struct PathTokens<'a> {
    /// The local home directory (%d).
    pub home: Option<&'a Path>,
    /// The local user name (%u).
    pub local_user: &'a str,
    /// The local user id (%i).
    pub local_uid: u32,
    /// The local host name (%l; %L is its first label).
    pub local_host: &'a str,
    /// The address connected to: HostName, else the name given (%h).
    pub host: &'a str,
    /// The name given on the command line (%n).
    pub original: &'a str,
    /// HostKeyAlias, else the name given (%k).
    pub alias: &'a str,
    /// The port connected to (%p).
    pub port: u16,
    /// The remote user (%r).
    pub user: &'a str,
}

/// Checks a path's `%` tokens and `${VAR}` references where the option is read, so an
/// error can name its file:line; the values are filled in by `expand_path_tokens` later.
pub fn check_path_tokens(v: &str) -> Result<()> {
    expand_path_tokens(v, None).map(|_| ())
}

/// Expands `${VAR}` (environment) and `%` tokens in a path, as ssh does for IdentityFile,
/// CertificateFile and UserKnownHostsFile. With `t` None only checks them.
pub fn expand_path_tokens(v: &str, t: Option<&PathTokens>) -> Result<String> {
    let mut out = String::new();
    let mut rest = v;
    while let Some(c) = rest.chars().next() {
        rest = rest.get(c.len_utf8()..).unwrap_or("");
        if c == '$' && rest.starts_with('{') {
            let end = rest
                .find('}')
                .ok_or_else(|| invalid("unterminated ${ (write ${NAME})".to_string()))?;
            let name = rest.get(1..end).unwrap_or("");
            if name.is_empty() {
                return Err(invalid(
                    "empty environment variable name in ${}".to_string(),
                ));
            }
            let value = std::env::var(name).map_err(|_| {
                invalid(format!(
                    "environment variable {name} (in ${{{name}}}) is not set"
                ))
            })?;
            out.push_str(&value);
            rest = rest.get(end + 1..).unwrap_or("");
            continue;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let token = rest.chars().next();
        rest = rest.get(token.map_or(0, char::len_utf8)..).unwrap_or("");
        let Some(token) = token else {
            return Err(invalid(
                "a lone % at the end (write %% for a percent sign)".to_string(),
            ));
        };
        if !"%dhikLlnpru".contains(token) {
            match token {
                'C' => {
                    return Err(invalid(
                        "token %C (a hash of the connection) is not supported by msh; write \
                         the path out"
                            .to_string(),
                    ))
                }
                _ => return Err(invalid(format!("unknown token %{token} (paths take %%, %d, %h, %i, %k, %L, %l, %n, %p, %r, %u)"))),
            }
        }
        let Some(t) = t else { continue };
        match token {
            '%' => out.push('%'),
            'd' => {
                let home = t.home.ok_or_else(|| {
                    invalid("%d: no home directory (HOME is not set)".to_string())
                })?;
                out.push_str(&home.to_string_lossy());
            }
            'h' => out.push_str(t.host),
            'i' => out.push_str(&t.local_uid.to_string()),
            'k' => out.push_str(t.alias),
            'l' => out.push_str(t.local_host),
            'L' => out.push_str(t.local_host.split('.').next().unwrap_or("")),
            'n' => out.push_str(t.original),
            'p' => out.push_str(&t.port.to_string()),
            'r' => out.push_str(t.user),
            _ => out.push_str(t.local_user),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name() {
        assert_eq!(expand_host_name("%h.corp", "b7").unwrap(), "b7.corp");
        assert_eq!(expand_host_name("a%%b", "h").unwrap(), "a%b");
        for bad in ["%p", "x%", "a b", ""] {
            assert!(expand_host_name(bad, "h").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_path_token() {
        let t = PathTokens {
            home: Some(Path::new("/home/me")),
            local_user: "me",
            local_uid: 1000,
            local_host: "laptop.example.com",
            host: "10.0.0.5",
            original: "alias",
            alias: "box",
            port: 2222,
            user: "ops",
        };
        assert_eq!(
            expand_path_tokens("%d/%u-%i-%l-%L/%h:%p/%n/%k/%r%%", Some(&t)).unwrap(),
            "/home/me/me-1000-laptop.example.com-laptop/10.0.0.5:2222/alias/box/ops%"
        );
        let e = expand_path_tokens("~/%C", None).unwrap_err().to_string();
        assert!(e.contains("%C (a hash of the connection)"), "{e}");
        let e = check_path_tokens("%x").unwrap_err().to_string();
        assert!(e.starts_with("unknown token %x"), "{e}");
        assert!(check_path_tokens("${").is_err());
        assert!(check_path_tokens("${}").is_err());
        assert!(check_path_tokens("50%").is_err());
    }
}
