//! Issue 9, "ecosystem pieces": `--version` on the three binaries, scripts/install.sh
//! putting binaries, man pages and completions where man, bash, zsh and fish look for them,
//! and mshd's unknown-key error pointing at the key table mshd.toml(5) is made from.
//! The test installs already-built binaries (`--no-build target/debug`): the default path,
//! `cargo install --locked` (a release build), takes minutes and is not run here.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use msh_tests::mshd::check_config;
use msh_tests::{bin, cmd, run, target_dir, TestDir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_binary_prints_its_name_and_the_workspace_version() {
    for name in ["msh", "msh-keygen", "mshd"] {
        for flag in ["--version", "-V"] {
            let out = run(cmd(bin(name), [flag]), b"", Duration::from_secs(20));
            assert_eq!(out.code(), Some(0), "{name} {flag}: {}", out.stderr);
            assert_eq!(
                out.stdout_str(),
                format!("{name} {}\n", env!("CARGO_PKG_VERSION")),
                "{name} {flag}"
            );
        }
    }
}

#[test]
fn install_script_puts_binaries_man_pages_and_completions_under_the_prefix() {
    let dir = TestDir::new("install");
    let prefix = dir.join("prefix");
    let out = run(
        cmd(
            workspace().join("scripts/install.sh"),
            [
                "--no-build".as_ref(),
                target_dir().as_os_str(),
                prefix.as_os_str(),
            ],
        ),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(out.code(), Some(0), "install.sh: {}", out.stderr);

    for name in ["msh", "msh-keygen", "mshd"] {
        let exe = prefix.join("bin").join(name);
        let mode = std::fs::metadata(&exe).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{}", exe.display());
        let v = run(cmd(&exe, ["--version"]), b"", Duration::from_secs(20));
        assert_eq!(v.code(), Some(0), "{}: {}", exe.display(), v.stderr);
        for file in [
            format!("share/bash-completion/completions/{name}"),
            format!("share/zsh/site-functions/_{name}"),
            format!("share/fish/vendor_completions.d/{name}.fish"),
        ] {
            let mode = std::fs::metadata(prefix.join(&file))
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .permissions()
                .mode()
                & 0o7777;
            assert_eq!(mode, 0o644, "{file}");
        }
    }

    // man finds each page by name in the prefix's man tree, in its section.
    for (page, section) in [
        ("msh", "1"),
        ("msh-keygen", "1"),
        ("mshd", "8"),
        ("mshd.toml", "5"),
    ] {
        let mut c = cmd("man", ["-w", section, page]);
        c.env("MANPATH", prefix.join("share/man"));
        let out = run(c, b"", Duration::from_secs(20));
        assert_eq!(
            out.stdout_str().trim(),
            prefix
                .join(format!("share/man/man{section}/{page}.{section}"))
                .display()
                .to_string(),
            "man -w {section} {page}: {}",
            out.stderr
        );
    }

    // bash's completion script registers a completion function for its command.
    let comp = prefix.join("share/bash-completion/completions/msh-keygen");
    let out = run(
        cmd(
            "bash",
            [
                "-c",
                &format!("source '{}' && complete -p msh-keygen", comp.display()),
            ],
        ),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    out.assert_stdout_contains("-F _msh__keygen msh-keygen");
}

#[test]
fn install_script_refuses_a_relative_prefix_and_a_bin_dir_without_the_binaries() {
    let dir = TestDir::new("install-bad");
    let out = run(
        cmd(
            workspace().join("scripts/install.sh"),
            ["--no-build", "target/debug", "rel"],
        ),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    out.assert_stderr_contains("PREFIX must be an absolute path");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let prefix = dir.join("prefix");
    let out = run(
        cmd(
            workspace().join("scripts/install.sh"),
            ["--no-build".as_ref(), empty.as_os_str(), prefix.as_os_str()],
        ),
        b"",
        Duration::from_secs(20),
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    out.assert_stderr_contains("empty/msh: no such executable");
    assert!(
        !prefix.exists(),
        "nothing installed when a binary is missing"
    );
}

#[test]
fn an_unknown_config_key_gets_the_closest_key_or_the_list_and_the_man_page() {
    let dir = TestDir::new("cfg-unknown");
    let typo = dir.write(
        "typo.toml",
        "strict_modes = true\nmax_auth_trys = 3\n",
        0o644,
    );
    let out = check_config(&typo);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    out.assert_stderr_contains(&format!(
        "{}:2: key `max_auth_trys`: unknown key `max_auth_trys`: did you mean \
             `max_auth_tries`? (see mshd.toml(5))",
        typo.display()
    ));
    let far = dir.write("far.toml", "zzz = 1\n", 0o644);
    let out = check_config(&far);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("unknown key `zzz`, expected one of: listen, host_keys,")
            && out.stderr.contains("subsystems (see mshd.toml(5))"),
        "{}",
        out.stderr
    );
}
