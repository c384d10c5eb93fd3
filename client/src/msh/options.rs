//! The one table of ssh_config keys msh implements, for `-o` and config files alike. It
//! gives the config reader its vocabulary, the "msh accepts: ..." list of unknown-option
//! errors and the `-o keys:` paragraph of `msh --help`; `settings::apply` gives each key its
//! meaning (a unit test there checks that every key here is handled).

/// One ssh_config key msh implements.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptionKey {
    /// The name as ssh_config(5) writes it (matched without case).
    pub(crate) name: &'static str,
    /// What `--help` says about the value, if anything.
    pub(crate) help: Option<&'static str>,
    /// Accepted only as `none` where it applies: ignoring any other value would accept host
    /// keys the user revoked (RevokedHostKeys). `-o KEY=none` overrides a config file's
    /// value, as in ssh (first value wins).
    pub(crate) none_only: bool,
}

const fn key(name: &'static str) -> OptionKey {
    OptionKey {
        name,
        help: None,
        none_only: false,
    }
}

const fn with_help(name: &'static str, help: &'static str) -> OptionKey {
    OptionKey {
        name,
        help: Some(help),
        none_only: false,
    }
}

const fn none_only(name: &'static str) -> OptionKey {
    OptionKey {
        name,
        help: None,
        none_only: true,
    }
}

/// Every key msh reads from `-o` and config files, in the order `--help` lists them.
pub(crate) const OPTION_KEYS: &[OptionKey] = &[
    with_help(
        "StrictHostKeyChecking",
        "ask [default], accept-new, yes; `no` is refused",
    ),
    key("UserKnownHostsFile"),
    with_help(
        "UpdateHostKeys",
        "yes [default with the default UserKnownHostsFile], no [otherwise], ask: learn the \
         keys a host verified through known_hosts proves it holds, forget those it dropped",
    ),
    key("GlobalKnownHostsFile"),
    key("BatchMode"),
    key("ConnectTimeout"),
    key("IdentityFile"),
    key("IdentitiesOnly"),
    with_help(
        "CertificateFile",
        "a user certificate, offered with the identity whose key it certifies; \
         KEY-cert.pub beside a key is offered without it",
    ),
    key("Port"),
    key("User"),
    key("HashKnownHosts"),
    key("HostKeyAlias"),
    with_help("HostName", "%h = the name given"),
    key("SendEnv"),
    key("SetEnv"),
    key("ServerAliveInterval"),
    key("LogLevel"),
    key("EscapeChar"),
    with_help(
        "ProxyJump",
        "[user@]host[:port][,...] or none, as -J; each hop verified as a direct connection",
    ),
    with_help(
        "ProxyCommand",
        "run with sh -c, its stdin/stdout is the connection; tokens %h %p %r %n %%, a name a shell would misread is refused; none",
    ),
    with_help("RequestTTY", "no, yes, force, auto; -t/-T win"),
    with_help("RemoteCommand", "the command when none is given; none"),
    with_help("ForwardX11", "no; yes is refused: msh does not forward X11"),
    with_help("PermitLocalCommand", "yes or no; msh runs no LocalCommand"),
    with_help(
        "ControlMaster",
        "accepted and ignored: msh does not share connections",
    ),
    with_help("LocalForward", "\"[bind:]port host:hostport\", like -L"),
    with_help("RemoteForward", "like -R"),
    with_help("DynamicForward", "like -D"),
    with_help(
        "GatewayPorts",
        "yes: -L/-D without a bind address listen on all interfaces; default no: loopback",
    ),
    key("ExitOnForwardFailure"),
    key("ClearAllForwardings"),
    with_help(
        "ForwardAgent",
        "yes, no [default], a socket path or $VARIABLE; -A / -a",
    ),
    none_only("RevokedHostKeys"),
];

/// The names the config reader hands back (all of the table).
pub(crate) fn keywords() -> Vec<&'static str> {
    OPTION_KEYS.iter().map(|k| k.name).collect()
}

/// The keys msh accepts with a value of their own, as unknown-option errors list them.
pub(crate) fn accepted_list() -> String {
    let names: Vec<&str> = OPTION_KEYS
        .iter()
        .filter(|k| !k.none_only)
        .map(|k| k.name)
        .collect();
    names.join(", ")
}

/// The `-o keys:` paragraph of `msh --help`.
pub(crate) fn help_paragraph() -> String {
    let keys: Vec<String> = OPTION_KEYS
        .iter()
        .filter(|k| !k.none_only)
        .map(|k| match k.help {
            Some(h) => format!("{} ({h})", k.name),
            None => k.name.to_string(),
        })
        .collect();
    let none_only: Vec<&str> = OPTION_KEYS
        .iter()
        .filter(|k| k.none_only)
        .map(|k| k.name)
        .collect();
    let none_only = match none_only.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    format!(
        "-o keys: {}; {none_only} only as `none` (msh refuses to ignore it where a config \
         file sets it).",
        keys.join(", ")
    )
}
