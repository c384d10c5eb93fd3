//! The one table of `mshd.toml` keys: [`parse_file`](super::parse_file) names its keys when
//! it refuses an unknown one, and `mshd.toml(5)` (tools/gen-dist) is written from it, so the
//! manual cannot list a key the parser refuses or miss one it accepts (a unit test holds the
//! table and [`FileConfig`](super::FileConfig) to the same set).

/// One key of `mshd.toml`.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key as written in the file.
    pub name: &'static str,
    /// The TOML type of its value, in words.
    pub value: &'static str,
    /// What applies when the key is absent.
    pub default: &'static str,
    /// One paragraph: what the key does.
    pub description: &'static str,
}

/// Every key `mshd.toml` accepts, in the order the manual lists them.
pub const KEYS: &[Key] = &[
    Key {
        name: "listen",
        value: "list of strings (ADDR:PORT)",
        default: "as root [\"0.0.0.0:22\"], otherwise [\"127.0.0.1:2222\"]",
        description: "Addresses to listen on. `--listen` replaces this list.",
    },
    Key {
        name: "host_keys",
        value: "list of paths",
        default:
            "as root /etc/msh/ssh_host_ed25519_key, otherwise <config_dir>/msh/ssh_host_ed25519_key",
        description:
            "Host private keys. A missing file is generated as ed25519 on first start. \
            With strict_modes, each must be owned by mshd's user or root, with no group or other \
            permission bits, in directories nobody else can write. `--host-key` replaces this list.",
    },
    Key {
        name: "host_certificates",
        value: "list of paths",
        default: "none",
        description: "Host certificates, each certifying one of host_keys, presented to clients \
            that accept host certificates. One that is expired, not yet valid or expires within \
            24 hours is still served, with a warning at start and at each SIGHUP.",
    },
    Key {
        name: "authorized_keys_files",
        value: "list of strings",
        default: "[\"%h/.ssh/authorized_keys\"]",
        description: "authorized_keys file patterns: %h is the user's home, %u the user name, \
            %% a percent sign; a relative path is under the home directory. \
            `--authorized-keys` replaces this list.",
    },
    Key {
        name: "trusted_user_ca_keys",
        value: "list of paths",
        default: "none",
        description: "Files of certificate authority public keys (several per file) whose user \
            certificates are accepted, as sshd's TrustedUserCAKeys.",
    },
    Key {
        name: "authorized_principals_file",
        value: "string",
        default: "none",
        description: "As sshd's AuthorizedPrincipalsFile (%u and %h tokens; \"none\" means not \
            set). A configured file that does not exist admits no certificate; the first line \
            naming one of the certificate's principals decides.",
    },
    Key {
        name: "authorized_keys_command",
        value: "string (absolute path and arguments)",
        default: "none",
        description: "As sshd's AuthorizedKeysCommand: a program whose standard output is read \
            as authorized_keys lines (options included), in addition to authorized_keys_files, \
            when no file admits the key. Arguments are split as sshd does (quotes, no shell) and \
            take the tokens %u user, %U uid, %h home, %f key fingerprint, %k base64 key, %t key \
            type, %% (no arguments: the user name). The program, and every directory above it, \
            must be owned by root (or, unprivileged, by mshd's user) and not group- or \
            world-writable. It runs with stdin /dev/null, a clean environment and a new process \
            group; a non-zero exit, a timeout or more than 1 MiB of output admits nobody from it.",
    },
    Key {
        name: "authorized_keys_command_user",
        value: "string (user name)",
        default: "none (required in root mode)",
        description: "The account authorized_keys_command runs as. Never root: a root account \
            or one that does not exist refuses the command (logged). mshd running unprivileged \
            runs the command as its own user and ignores this key.",
    },
    Key {
        name: "authorized_keys_command_timeout",
        value: "duration string (s, m, h)",
        default: "\"30s\"",
        description: "How long authorized_keys_command may run; past it the command's process \
            group is killed and the command admits nobody.",
    },
    Key {
        name: "authorized_principals_command",
        value: "string (absolute path and arguments)",
        default: "none",
        description: "As sshd's AuthorizedPrincipalsCommand: a program whose output is read as \
            authorized_principals_file lines (options included), for certificates of a CA in \
            trusted_user_ca_keys, after authorized_principals_file if one is set. Tokens as \
            authorized_keys_command (%f, %k, %t of the certificate) plus %i key id, %s serial, \
            %F CA fingerprint, %K base64 CA key, %T CA key type. Same rules for the program, \
            its run and its output.",
    },
    Key {
        name: "authorized_principals_command_user",
        value: "string (user name)",
        default: "none (required in root mode)",
        description: "The account authorized_principals_command runs as; same rules as \
            authorized_keys_command_user.",
    },
    Key {
        name: "authorized_principals_command_timeout",
        value: "duration string (s, m, h)",
        default: "\"30s\"",
        description: "How long authorized_principals_command may run.",
    },
    Key {
        name: "revoked_keys",
        value: "path",
        default: "none",
        description: "An OpenSSH key list or binary KRL, read at each login. If it is unreadable \
            or malformed, every key is refused (fail closed, as sshd).",
    },
    Key {
        name: "strict_modes",
        value: "boolean",
        default: "true",
        description: "Check ownership and modes of authorized_keys and principals files (the \
            file and every directory up to the home directory, or /: owned by the user or root, \
            not group- or world-writable) and of host keys, at start, --check-config and SIGHUP.",
    },
    Key {
        name: "max_auth_tries",
        value: "integer",
        default: "6",
        description: "Authentication attempts per connection, counted as sshd's MaxAuthTries.",
    },
    Key {
        name: "login_grace_time",
        value: "duration string (s, m, h)",
        default: "\"120s\"",
        description: "Time from TCP accept (including the version exchange) to a successful \
            login; 0 means no limit.",
    },
    Key {
        name: "max_startups",
        value: "string (start:rate:full)",
        default: "\"10:30:100\"",
        description: "Unauthenticated connections, with OpenSSH's MaxStartups semantics: from \
            start on, rate percent of new ones are dropped, rising linearly to 100 at full.",
    },
    Key {
        name: "max_sessions",
        value: "integer",
        default: "10",
        description: "Session channels per connection.",
    },
    Key {
        name: "per_source_max_startups",
        value: "integer",
        default: "5",
        description: "Unauthenticated connections one source address (IPv4, or IPv6 /128) may \
            hold; 0 means no limit. Up to 64 more from that address wait for a slot, for at most \
            login_grace_time; beyond those they are closed at accept.",
    },
    Key {
        name: "allow_users",
        value: "list of strings",
        default: "none",
        description: "Only these accounts may log in: OpenSSH patterns (*, ?, !) matched against \
            the account's own name, or USER@HOSTS, HOSTS being addresses, CIDR networks or \
            address patterns (mshd never resolves names, so a host name is refused).",
    },
    Key {
        name: "deny_users",
        value: "list of strings",
        default: "none",
        description: "These accounts may not log in; same patterns as allow_users.",
    },
    Key {
        name: "accept_env",
        value: "list of strings",
        default: "[\"LANG\", \"LC_*\"]",
        description: "Environment variable name patterns a client may set (at most 128 \
            variables per session channel, names up to 256 bytes, values up to 16 KiB).",
    },
    Key {
        name: "permit_user_environment",
        value: "boolean or list of strings",
        default: "false",
        description: "As sshd's PermitUserEnvironment: whether environment= options of \
            authorized_keys and principals-file lines are applied: false, true, or a list of \
            name patterns such as [\"LANG\", \"APP_*\", \"!APP_SECRET\"]. Loader and shell \
            start-up variables are never applied.",
    },
    Key {
        name: "audit_log",
        value: "string (path, or - for stdout)",
        default: "none",
        description: "Write the JSON-lines audit log there. `--audit-log` replaces it.",
    },
    Key {
        name: "audit_syslog",
        value: "string (off, journald, syslog)",
        default: "\"off\"",
        description: "Also send every audit event as a structured record, besides audit_log: \
            journald (systemd's native journal protocol: one MSH_* field per attribute, so \
            `journalctl MSH_EVENT=auth MSH_OUTCOME=rejected` finds refused logins) or syslog \
            (RFC 5424 on /dev/log, facility authpriv, the attributes as STRUCTURED-DATA \
            [msh@32473 ...] and the JSON record as the message). Sends never wait: a record \
            the socket does not take at once is dropped and counted in \
            mshd_audit_syslog_dropped_total. Changed at SIGHUP.",
    },
    Key {
        name: "audit_syslog_socket",
        value: "string (absolute path)",
        default: "/run/systemd/journal/socket for journald, /dev/log for syslog",
        description: "The local datagram socket audit_syslog sends to, for a syslog daemon \
            listening elsewhere (rsyslog's imuxsock on another socket, \
            /run/systemd/journal/syslog).",
    },
    Key {
        name: "metrics_listen",
        value: "string (ADDR:PORT)",
        default: "none (off)",
        description: "Serve Prometheus metrics over plain HTTP on GET /metrics at this address, \
            for example \"127.0.0.1:9122\". Anyone who can connect can read them (counts, no \
            user names): keep it on loopback or behind a firewall. Read at start only.",
    },
    Key {
        name: "record_logins",
        value: "boolean",
        default: "true",
        description: "Root mode: record sessions with a PTY as sshd does, so who, w, last and \
            lastlog show them: a USER_PROCESS entry in /var/run/utmp and the same record in \
            /var/log/wtmp when the session starts (line pts/N, the user, the client's address, \
            the session process's PID), the user's /var/log/lastlog entry, and a DEAD_PROCESS \
            entry and a logout record when it ends. A file that is missing is skipped; one that \
            is not a regular file owned by root is refused (logged once). Sessions without a \
            PTY, and mshd running unprivileged, record nothing.",
    },
    Key {
        name: "print_last_log",
        value: "boolean",
        default: "true",
        description: "Root mode: when a shell starts on a PTY (no command), show the user's \
            previous login from /var/log/lastlog first, as sshd's PrintLastLog (\"Last login: \
            Sat Dec  5 09:07:14 2026 from 192.0.2.7\"); not shown when ~/.hushlogin exists.",
    },
    Key {
        name: "use_pam",
        value: "boolean",
        default: "true as root when /etc/pam.d exists, otherwise false",
        description: "PAM, as sshd's UsePAM: at login, after the key is accepted, the service's \
            account modules (pam_acct_mgmt: expiry, pam_nologin, pam_access, sssd/LDAP rules) \
            must admit the user, or the login fails like a refused key; around every session, \
            pam_setcred and pam_open_session/pam_close_session (pam_limits, pam_env, \
            pam_loginuid, pam_systemd) run in a small per-session root process, never in \
            mshd itself, and the variables the modules set are in the session's environment. \
            mshd does not authenticate through PAM (no auth or password stack), and an account \
            whose password must be changed is refused. Expired and locked accounts are refused \
            from /etc/shadow with or without PAM. Root mode only: true when not root is an \
            error. Read at start and at SIGHUP.",
    },
    Key {
        name: "pam_service",
        value: "string",
        default: "\"msh\"",
        description: "The PAM service name: /etc/pam.d/<pam_service> (dist/pam.d/msh is \
            installed as /etc/pam.d/msh; \"sshd\" shares sshd's). A missing file is warned \
            about at start: PAM then uses /etc/pam.d/other.",
    },
    Key {
        name: "post_quantum_only",
        value: "boolean",
        default: "false",
        description: "Offer only the mlkem768x25519-sha256 key exchange.",
    },
    Key {
        name: "shutdown_grace_time",
        value: "duration string (s, m, h)",
        default: "\"10s\"",
        description: "How long sessions may go on after SIGTERM; 0 means hang up at once.",
    },
    Key {
        name: "allow_tcp_forwarding",
        value: "string (yes, no, local, remote)",
        default: "\"yes\"",
        description: "As sshd's AllowTcpForwarding: local forwards (the client's -L, -D, -W, \
            -J: direct-tcpip channels) and/or remote forwards (-R: listeners on the server). \
            A key's no-port-forwarding or restrict, or a certificate without \
            permit-port-forwarding, refuses both for that login.",
    },
    Key {
        name: "allow_stream_local_forwarding",
        value: "string (yes, no, local, remote)",
        default: "\"yes\"",
        description: "As sshd's AllowStreamLocalForwarding, for forwards to Unix sockets \
            (direct-streamlocal@openssh.com; mshd does not listen on Unix sockets for clients, \
            so only local applies). Key options as for allow_tcp_forwarding.",
    },
    Key {
        name: "allow_agent_forwarding",
        value: "boolean",
        default: "true",
        description: "As sshd's AllowAgentForwarding: a session may ask for the client's \
            agent (ssh -A); the socket is made in a fresh 0700 directory under /tmp owned by \
            the user, named in SSH_AUTH_SOCK, and removed when the connection ends.",
    },
    Key {
        name: "gateway_ports",
        value: "boolean",
        default: "false",
        description: "false: remote forwards listen on the loopback address only, whatever \
            the client asks; true: on the address the client names (sshd's \
            GatewayPorts clientspecified; \"\" or \"*\" is every address).",
    },
    Key {
        name: "permit_open",
        value: "list of strings (host:port)",
        default: "[\"any\"]",
        description: "As sshd's PermitOpen: the only targets local forwards may connect to \
            (host as the client sends it; * as host or port means any); [\"none\"] refuses \
            all. A key's permitopen= restricts further.",
    },
    Key {
        name: "permit_listen",
        value: "list of strings ([host:]port)",
        default: "[\"any\"]",
        description: "As sshd's PermitListen: the only addresses remote forwards may listen \
            on (a bare port: any host); [\"none\"] refuses all. A key's permitlisten= \
            restricts further. Ports below 1024 are refused to users other than root.",
    },
    Key {
        name: "subsystems",
        value: "table of name = command line",
        default: "{ sftp = \"<the first OpenSSH sftp-server found>\" }",
        description: "Subsystems, as sshd's Subsystem: name to command line. subsystems = {} \
            turns all off. The default sftp-server is looked up when the config is read (at \
            start and SIGHUP); none found means no default.",
    },
];

/// The table key closest to `name` (an edit distance of at most a third of its length), for a
/// "did you mean" after an unknown key.
pub fn suggest(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (distance(name, k.name), k.name))
        .filter(|(d, k)| *d <= k.len().max(name.len()) / 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let here = (prev + usize::from(ca != *cb))
                .min(above.saturating_add(1))
                .min(left.saturating_add(1));
            prev = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = here;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}
