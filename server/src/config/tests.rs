use super::*;

/// `f` resolved as a non-root user's `m.toml`, without command-line overrides.
fn resolve_user(f: FileConfig) -> Result<Settings> {
    Settings::resolve(f, Path::new("m.toml"), &Overrides::default(), false)
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = "listen = [\"127.0.0.1:1\"]\nbogus_key = 3\n";
    let e = parse_file(text, Path::new("/x/mshd.toml")).unwrap_err();
    let s = format!("{e:#}");
    assert!(s.starts_with("/x/mshd.toml:2:"), "{s}");
    assert!(s.contains("bogus_key"), "{s}");
}

#[test]
fn unknown_key_suggests_a_table_key_or_lists_them() {
    let e = parse_file("max_auth_trys = 3\n", Path::new("m.toml")).unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        "m.toml:1: key `max_auth_trys`: unknown key `max_auth_trys`: did you mean \
         `max_auth_tries`? (see mshd.toml(5))"
    );
    let e = parse_file("zzz = 3\n", Path::new("m.toml")).unwrap_err();
    let s = format!("{e:#}");
    for k in keys::KEYS {
        assert!(
            s.contains(&format!("`{}`", k.name)) || s.contains(k.name),
            "{s}"
        );
    }
}

/// The key table (and so mshd.toml(5)) and the keys the parser accepts are the same set:
/// a file setting every table key parses, and every key the parser knows is in the table
/// (serde's "expected one of" list is taken from the struct itself).
#[test]
fn key_table_is_the_set_of_file_config_fields() {
    let value = |name: &str| match name {
        "strict_modes" | "post_quantum_only" | "permit_user_environment" => "true",
        "use_pam" => "false",
        "allow_agent_forwarding" | "gateway_ports" => "true",
        "record_logins" | "print_last_log" => "false",
        "allow_tcp_forwarding" | "allow_stream_local_forwarding" => "\"no\"",
        "permit_open" | "permit_listen" => "[\"any\"]",
        "max_auth_tries" | "max_sessions" | "per_source_max_startups" => "1",
        "listen"
        | "host_keys"
        | "host_certificates"
        | "authorized_keys_files"
        | "trusted_user_ca_keys"
        | "allow_users"
        | "deny_users"
        | "accept_env" => "[\"x\"]",
        "subsystems" => "{ sftp = \"/bin/true\" }",
        "metrics_listen" => "\"127.0.0.1:9122\"",
        _ => "\"x\"",
    };
    let text: String = keys::KEYS
        .iter()
        .map(|k| format!("{} = {}\n", k.name, value(k.name)))
        .collect();
    if let Err(e) = parse_file(&text, Path::new("all.toml")) {
        panic!("a table key the parser refuses: {e:#}\n{text}");
    }
    // serde's own message for an unknown field lists every field of FileConfig.
    let serde_msg = toml::from_str::<FileConfig>("zzz = 1")
        .unwrap_err()
        .to_string();
    let listed = serde_msg
        .split("expected one of")
        .nth(1)
        .unwrap_or_else(|| panic!("{serde_msg}"));
    let fields: Vec<&str> = listed.split('`').skip(1).step_by(2).collect();
    let mut table: Vec<&str> = keys::KEYS.iter().map(|k| k.name).collect();
    let mut fields_sorted = fields.clone();
    table.sort_unstable();
    fields_sorted.sort_unstable();
    assert_eq!(table, fields_sorted, "keys.rs KEYS vs FileConfig fields");
}

#[test]
fn bad_value_names_line() {
    let text = "\n\nstrict_modes = \"yes\"\n";
    let e = parse_file(text, Path::new("m.toml")).unwrap_err();
    assert!(format!("{e:#}").starts_with("m.toml:3:"), "{e:#}");
}

#[test]
fn defaults_and_overrides() {
    let s = resolve_user(FileConfig::default()).unwrap();
    assert_eq!(s.listen, vec!["127.0.0.1:2222".parse().unwrap()]);
    assert_eq!(s.accept_env, vec!["LANG", "LC_*"]);
    assert_eq!(s.max_auth_tries, 6);
    let over = Overrides {
        listen: vec!["127.0.0.1:9".into()],
        ..Default::default()
    };
    let s = Settings::resolve(FileConfig::default(), Path::new("m.toml"), &over, true).unwrap();
    assert_eq!(s.listen, vec!["127.0.0.1:9".parse().unwrap()]);
    assert_eq!(
        s.host_keys,
        vec![PathBuf::from("/etc/msh/ssh_host_ed25519_key")]
    );
}

#[test]
fn hardening_keys_defaults_and_values() {
    let s = resolve_user(FileConfig::default()).unwrap();
    assert_eq!(s.per_source_max_startups, 5);
    assert!(!s.post_quantum_only);
    assert_eq!(s.shutdown_grace_time, Duration::from_secs(10));
    let f = parse_file(
        "per_source_max_startups = 0\npost_quantum_only = true\nshutdown_grace_time = \"1m\"\n",
        Path::new("m.toml"),
    )
    .unwrap();
    let s = resolve_user(f).unwrap();
    assert_eq!(s.per_source_max_startups, 0);
    assert!(s.post_quantum_only);
    assert_eq!(s.shutdown_grace_time, Duration::from_secs(60));
    let f = parse_file("shutdown_grace_time = \"x\"\n", Path::new("m.toml")).unwrap();
    let e = resolve_user(f).unwrap_err();
    assert!(format!("{e:#}").contains("shutdown_grace_time"), "{e:#}");
}

#[test]
fn bad_listen_is_an_error() {
    let f = FileConfig {
        listen: Some(vec!["nope".into()]),
        ..Default::default()
    };
    let e = resolve_user(f).unwrap_err();
    assert!(format!("{e:#}").contains("listen"));
}

#[test]
fn subsystems_table_default_and_errors() {
    let resolve = |text: &str| {
        let f = parse_file(text, Path::new("m.toml")).unwrap();
        resolve_user(f).unwrap()
    };
    // Absent: sftp -> the first sftp-server that exists here, or off (with a note).
    let s = resolve("");
    match first_existing(&SFTP_SERVER_CANDIDATES) {
        Some(p) => {
            assert_eq!(s.subsystems.get("sftp"), Some(&p.display().to_string()));
            assert!(s.startup_notes().is_empty());
        }
        None => {
            assert!(s.subsystems.is_empty());
            let notes = s.startup_notes();
            assert!(notes[0].contains("sftp is off"), "{notes:?}");
            assert!(notes[0].contains("subsystems = {"), "{notes:?}");
        }
    }
    // `{}` turns every subsystem off, with no note.
    let s = resolve("subsystems = {}\n");
    assert!(s.subsystems.is_empty());
    assert!(s.startup_notes().is_empty());
    assert!(s.to_toml().unwrap().contains("[subsystems]"));
    // Both TOML spellings; the command line is kept whole (arguments included).
    let s = resolve("subsystems = { sftp = \"/opt/sftp-server -l INFO\", x = \"cat\" }\n");
    assert_eq!(s.subsystems["sftp"], "/opt/sftp-server -l INFO");
    assert_eq!(s.subsystems["x"], "cat");
    let s = resolve("max_sessions = 3\n[subsystems]\nsftp = \"/opt/s\"\n");
    assert_eq!(s.subsystems.len(), 1);
    // --check-config prints the effective table, which reads back the same.
    let printed = s.to_toml().unwrap();
    assert!(printed.contains("sftp = \"/opt/s\""), "{printed}");
    assert_eq!(resolve(&printed).subsystems, s.subsystems);
    // An empty command names file:line and key.
    let e = parse_file(
        "max_sessions = 3\n\nsubsystems = { sftp = \"  \" }\n",
        Path::new("/x/m.toml"),
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.starts_with("/x/m.toml:3: key `subsystems.sftp`: empty command"),
        "{msg}"
    );
    let e = parse_file("subsystems = { sftp = 3 }\n", Path::new("m.toml")).unwrap_err();
    assert!(format!("{e:#}").starts_with("m.toml:1:"), "{e:#}");
}

#[test]
fn first_existing_takes_the_first_that_exists() {
    let dir = std::env::temp_dir();
    let missing = dir.join("msh-no-such-sftp-server-here");
    assert_eq!(first_existing(&[&missing, &dir]), Some(dir.clone()));
    assert_eq!(first_existing(&[&missing]), None);
}

#[test]
fn permit_user_environment_is_off_by_default_and_takes_a_bool_or_patterns() {
    let resolve = |text: &str| {
        let f = parse_file(text, Path::new("m.toml")).unwrap();
        resolve_user(f)
    };
    let off = resolve("").unwrap();
    assert_eq!(
        off.permit_user_environment,
        PermitUserEnvironment::All(false)
    );
    let on = resolve("permit_user_environment = true\n").unwrap();
    assert_eq!(on.permit_user_environment, PermitUserEnvironment::All(true));
    let some = resolve("permit_user_environment = [\"LANG\", \"APP_*\"]\n").unwrap();
    assert_eq!(
        some.permit_user_environment,
        PermitUserEnvironment::Names(vec!["LANG".into(), "APP_*".into()])
    );
    // --check-config output reads back the same.
    for s in [off, on, some] {
        let printed = s.to_toml().unwrap();
        let again = resolve(&printed).unwrap();
        assert_eq!(again.permit_user_environment, s.permit_user_environment);
    }
    let e = resolve("permit_user_environment = [\"\"]\n").unwrap_err();
    assert!(
        format!("{e:#}").contains("permit_user_environment"),
        "{e:#}"
    );
    let e = parse_file("\npermit_user_environment = \"yes\"\n", Path::new("m.toml")).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.starts_with("m.toml:2:"), "{e}");
    assert!(
        e.contains("permit_user_environment = true, false, or a list"),
        "{e}"
    );
}

#[test]
fn tokens() {
    assert!(check_tokens("%h/.ssh/k_%u%%").is_ok());
    assert!(check_tokens("%x").is_err());
    assert!(parse_startups("10:30").is_err());
}

#[test]
fn use_pam_and_pam_service_defaults_and_errors() {
    let f = |text: &str| parse_file(text, Path::new("m.toml")).unwrap();
    // Unprivileged: off by default, and asking for it names the key and the fix.
    let s = resolve_user(f("")).unwrap();
    assert!(!s.use_pam);
    assert_eq!(s.pam_service, "msh");
    let e = format!("{:#}", resolve_user(f("\nuse_pam = true\n")).unwrap_err());
    assert!(
        e.contains("m.toml:2: key `use_pam`: use_pam = true needs mshd to run as root"),
        "{e}"
    );
    assert!(!resolve_user(f("use_pam = false\n")).unwrap().use_pam);
    // Root: on when this system has PAM, and the service name is a name, not a path.
    let root =
        |text: &str| Settings::resolve(f(text), Path::new("m.toml"), &Overrides::default(), true);
    let s = root("").unwrap();
    assert_eq!(s.use_pam, Path::new("/etc/pam.d").is_dir());
    assert!(!root("use_pam = false\n").unwrap().use_pam);
    assert_eq!(
        root("pam_service = \"sshd\"\n").unwrap().pam_service,
        "sshd"
    );
    for bad in ["../etc/shadow", "", "a b", ".hidden", "x/y"] {
        let e = format!(
            "{:#}",
            root(&format!("pam_service = {bad:?}\n")).unwrap_err()
        );
        assert!(
            e.contains("m.toml:1: key `pam_service`") && e.contains("is not a PAM service name"),
            "{bad}: {e}"
        );
    }
}
