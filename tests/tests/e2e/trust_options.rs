//! Issue 7, items 2, 3 and 13: options on authorized_principals_file lines (`from=`,
//! `expiry-time=`) refuse as they do in sshd; a configured principals file that does not exist
//! admits no certificate; `environment=` applies only with `permit_user_environment`, and
//! never for loader or shell start-up variables. Each case is driven with OpenSSH's ssh and
//! with msh, and the principals cases are compared with a real sshd given the same file.

use std::path::PathBuf;
use std::time::Duration;

use msh_tests::mshd::{user_ca_builder, Mshd};
use msh_tests::sshd::{Sshd, SshdOptions};
use msh_tests::*;

const T: Duration = Duration::from_secs(30);
const LOG: Duration = Duration::from_secs(10);

/// mshd and sshd trusting the same user CA, both with an empty authorized_keys and the same
/// `authorized_principals_file` (`principals-%u` in the test directory); the client key has
/// a certificate (`id_ed25519-cert.pub`, beside it) for `principals`.
struct Both {
    d: Mshd,
    sshd: Sshd,
    sshd_kh: PathBuf,
    /// The principals file for the user both log in as.
    file: PathBuf,
}

impl Both {
    fn start(name: &str, principals: &str) -> Both {
        let (b, ca) = user_ca_builder(name);
        let pattern = ca.with_file_name("principals-%u");
        let d = b.authorized_principals_file(&pattern).start();
        let sshd = Sshd::start_with(
            &d.dir,
            SshdOptions {
                extra_config: vec![
                    format!("TrustedUserCAKeys {}.pub", ca.display()),
                    format!("AuthorizedPrincipalsFile {}", pattern.display()),
                ],
                ..Default::default()
            },
        );
        assert_eq!(
            sshd.user, d.user,
            "both log in as the user running the tests"
        );
        let sshd_kh = sshd.write_known_hosts(&d.dir.join("sshd_known_hosts"));
        ssh_keygen_sign(&ca, &d.dir.join("id_ed25519.pub"), "cert", principals, &[]);
        let file = d.dir.join(format!("principals-{}", d.user));
        Both {
            d,
            sshd,
            sshd_kh,
            file,
        }
    }

    fn write_principals(&self, text: &str) {
        self.d.dir.write(
            self.file.file_name().unwrap().to_str().unwrap(),
            text,
            0o600,
        );
    }

    /// Exit codes of OpenSSH ssh → mshd, msh → mshd, and ssh → sshd, running `echo in`.
    fn outcomes(&self) -> [Option<i32>; 3] {
        let ssh = run(self.d.ssh(&[], "echo in"), b"", T);
        let msh = run(msh_to(&self.d, &self.d.user, "echo in"), b"", T);
        let sshd = run(
            self.sshd
                .ssh_command(&self.d.client_key, &self.sshd_kh, "echo in"),
            b"",
            T,
        );
        for out in [&ssh, &msh, &sshd] {
            if out.code() == Some(0) {
                assert_eq!(out.stdout_str(), "in\n");
            } else {
                assert!(out.stdout.is_empty());
            }
        }
        [ssh.code(), msh.code(), sshd.code()]
    }

    /// All three refused, and mshd's log (since `before`) says `why`.
    fn assert_refused(&self, why: &str) {
        let before = self.d.log_text().len();
        assert_eq!(
            self.outcomes(),
            [Some(255); 3],
            "ssh→mshd, msh→mshd, ssh→sshd\nmshd log:\n{}\nsshd log:\n{}",
            self.d.log_text(),
            self.sshd.log()
        );
        wait_for_new(&self.d, before, why);
    }

    fn assert_accepted(&self) {
        assert_eq!(
            self.outcomes(),
            [Some(0); 3],
            "ssh→mshd, msh→mshd, ssh→sshd\nmshd log:\n{}\nsshd log:\n{}",
            self.d.log_text(),
            self.sshd.log()
        );
    }
}

/// msh to `d` as `user` with the fixture's key (and its certificate beside it).
fn msh_to(d: &Mshd, user: &str, remote: &str) -> std::process::Command {
    let mut c = crate::msh_to_sshd::msh_cmd(&d.dir, d.port, user, &d.known_hosts, &[]);
    c.arg("-i")
        .arg(&d.client_key)
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["127.0.0.1", remote]);
    c
}

/// Waits for `needle` in mshd's log after byte `before`.
fn wait_for_new(d: &Mshd, before: usize, needle: &str) {
    let start = std::time::Instant::now();
    loop {
        let log = d.log_text();
        if log.get(before..).unwrap_or("").contains(needle) {
            return;
        }
        assert!(
            start.elapsed() < LOG,
            "mshd did not log {needle:?}; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn principals_file_from_and_expiry_time_refuse_as_in_sshd() {
    let b = Both::start("principals-options", "ops");
    let src = format!("{}:1", b.file.display());
    b.write_principals("from=\"10.0.0.0/8\" ops\n");
    b.assert_refused(&format!(
        "{src}: from=\"10.0.0.0/8\" does not admit 127.0.0.1"
    ));
    b.write_principals("expiry-time=\"20200101\" ops\n");
    b.assert_refused(&format!("{src}: entry expired at 2020-01-01"));
    // Invalid in a principals file: sshd denies the line.
    b.write_principals("cert-authority ops\n");
    b.assert_refused(&format!("{src}: cert-authority is not valid"));
    // The first line naming the principal decides: a later, open line does not rescue it.
    b.write_principals("from=\"10.0.0.0/8\" ops\nops\n");
    b.assert_refused(&format!("{src}: from=\"10.0.0.0/8\" does not admit"));
    b.write_principals("from=\"127.0.0.0/8\",expiry-time=\"29990101\" ops\n");
    b.assert_accepted();
}

#[test]
fn a_configured_principals_file_that_does_not_exist_admits_no_certificate() {
    // The certificate names the user itself, which would do without a principals file.
    let user = msh_tests::mshd::current_user();
    let b = Both::start("principals-missing", &user);
    assert!(!b.file.exists());
    b.assert_refused(&format!(
        "authorized_principals_file {} does not exist",
        b.file.display()
    ));
    b.write_principals(&format!("{user}\n"));
    b.assert_accepted();
}

/// `echo "[$LD_PRELOAD][$FOO]"` through ssh and msh to an mshd whose authorized_keys line
/// sets both.
fn env_seen(d: &Mshd) -> [String; 2] {
    let remote = "echo \"[$LD_PRELOAD][$MSHT_FOO]\"";
    let ssh = run(d.ssh(&[], remote), b"", T);
    d.assert_ok(&ssh);
    let msh = run(msh_to(d, &d.user, remote), b"", T);
    d.assert_ok(&msh);
    [ssh.stdout_str(), msh.stdout_str()]
}

const ENV_OPTIONS: &str =
    r#"environment="LD_PRELOAD=/nonexistent/x.so",environment="MSHT_FOO=bar""#;

#[test]
fn environment_options_need_permit_user_environment_and_never_set_the_loader() {
    // Default: neither is set (sshd's PermitUserEnvironment defaults to no).
    let d = Mshd::builder("env-default")
        .authorized_keys_options(ENV_OPTIONS)
        .start();
    assert_eq!(env_seen(&d), ["[][]\n", "[][]\n"]);
    d.wait_for_log("environment=\"MSHT_FOO=...\" at ", LOG);
    let log = d.wait_for_log("ignored: permit_user_environment does not allow it", LOG);
    assert!(!log.contains("=bar"), "a value reached the log: {log}");

    // Permitted: MSHT_FOO is set, LD_PRELOAD still not, and that is logged.
    let d = Mshd::builder("env-permitted")
        .authorized_keys_options(ENV_OPTIONS)
        .toml("permit_user_environment = true")
        .start();
    assert_eq!(env_seen(&d), ["[][bar]\n", "[][bar]\n"]);
    d.wait_for_log("environment=\"LD_PRELOAD=...\" at ", LOG);
    d.wait_for_log("LD_PRELOAD is never set from an option", LOG);

    // A pattern list allows only what it names.
    let d = Mshd::builder("env-patterns")
        .authorized_keys_options(ENV_OPTIONS)
        .toml("permit_user_environment = [\"LD_*\", \"OTHER\"]")
        .start();
    assert_eq!(env_seen(&d), ["[][]\n", "[][]\n"]);
}
