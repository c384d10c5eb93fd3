//! msh as the transport of other programs, called as they call ssh: `scp -S msh` (SFTP
//! mode and legacy `-O`) both ways, `sftp -S msh`, `rsync -e msh` push and pull, and
//! `GIT_SSH_COMMAND=msh git clone` over `ssh://` and scp-like URLs, against mshd (its sftp
//! subsystem, its exec) and against OpenSSH's sshd; also through a jump host. Each tool
//! finds the host in `~/.ssh/config` (HOME = the test directory), as a user's would.

use std::path::Path;
use std::process::Command;

use msh_tests::*;

use crate::jump::{Net, T};

/// The payload files: some bytes that are not text.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 256) as u8).collect()
}

/// `~/.ssh/config` naming the hosts, as msh reads it without -F.
fn home_config(net: &Net) {
    let text = std::fs::read_to_string(&net.cfg).unwrap();
    net.dir.write(".ssh/config", text, 0o600);
    std::fs::set_permissions(
        net.dir.join(".ssh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
}

/// `program` with HOME = the test directory, no agent, no git/system config.
fn tool_cmd(net: &Net, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args)
        .current_dir(&net.dir.path)
        .env("HOME", &net.dir.path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG");
    c
}

fn ok(out: &Output, what: &str) {
    assert_eq!(
        out.code(),
        Some(0),
        "{what}: stdout {} stderr {}",
        out.stdout_str(),
        out.stderr
    );
}

fn same(a: &Path, b: &Path) {
    let x = std::fs::read(a).unwrap_or_else(|e| panic!("{}: {e}", a.display()));
    let y = std::fs::read(b).unwrap_or_else(|e| panic!("{}: {e}", b.display()));
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

#[test]
fn scp_s_msh_both_ways_sftp_and_legacy_modes() {
    let net = Net::new("tt-scp");
    home_config(&net);
    let msh = bin("msh");
    let msh = msh.to_str().unwrap();
    let src = net.dir.write("src.bin", payload(200_000), 0o644);
    for (host, mode) in [
        ("target", None),
        ("target", Some("-O")),
        ("starget", None),
        ("starget", Some("-O")),
    ] {
        let tag = format!("{host}{}", mode.unwrap_or(""));
        let up = net.dir.join(format!("up-{tag}.bin"));
        let down = net.dir.join(format!("down-{tag}.bin"));
        // `scp -S msh [-O] FROM TO`, which must succeed.
        let scp = |from: &str, to: &str, what: &str| {
            let mut args = vec!["-S", msh];
            args.extend(mode);
            args.extend([from, to]);
            ok(
                &run(tool_cmd(&net, "scp", &args), b"", T),
                &format!("scp {what} {tag}"),
            );
        };
        let remote_up = format!("{host}:{}", up.display());
        scp(&src.display().to_string(), &remote_up, "upload");
        same(&src, &up);
        scp(&remote_up, &down.display().to_string(), "download");
        same(&src, &down);
    }
    // Through a jump host: scp's -J is passed on as -J.
    let up = net.dir.join("up-jump.bin");
    let dst = format!("target:{}", up.display());
    let out = run(
        tool_cmd(
            &net,
            "scp",
            &["-S", msh, "-J", "bastion", src.to_str().unwrap(), &dst],
        ),
        b"",
        T,
    );
    ok(&out, "scp -J");
    same(&src, &up);
    assert_eq!(Net::logins(&net.bastion), 1);
}

#[test]
fn sftp_s_msh_batch() {
    let net = Net::new("tt-sftp");
    home_config(&net);
    let msh = bin("msh");
    let src = net.dir.write("src.bin", payload(100_000), 0o644);
    let back = net.dir.join("back.bin");
    let remote = net.dir.join("remote.bin");
    let batch = net.dir.write(
        "batch",
        format!(
            "put {} {}\nget {} {}\nls -l {}\n",
            src.display(),
            remote.display(),
            remote.display(),
            back.display(),
            remote.display()
        ),
        0o644,
    );
    for host in ["target", "starget"] {
        let _ = std::fs::remove_file(&back);
        let out = run(
            tool_cmd(
                &net,
                "sftp",
                &[
                    "-S",
                    msh.to_str().unwrap(),
                    "-b",
                    batch.to_str().unwrap(),
                    host,
                ],
            ),
            b"",
            T,
        );
        ok(&out, &format!("sftp {host}"));
        same(&src, &back);
        out.assert_stdout_contains("remote.bin");
    }
}

#[test]
fn rsync_e_msh_push_and_pull_through_config_and_jump() {
    let net = Net::new("tt-rsync");
    home_config(&net);
    let msh = bin("msh").display().to_string();
    let src = net.dir.join("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.bin"), payload(70_000)).unwrap();
    std::fs::write(src.join("sub/b.txt"), "bee\n").unwrap();
    let pushed = net.dir.join("pushed");
    let pulled = net.dir.join("pulled");
    let jump = format!("{msh} -J bastion");
    for (e, host) in [
        (msh.as_str(), "target"),
        (jump.as_str(), "target"),
        (msh.as_str(), "starget"),
    ] {
        let _ = std::fs::remove_dir_all(&pushed);
        let _ = std::fs::remove_dir_all(&pulled);
        let to = format!("{host}:{}/", pushed.display());
        let out = run(
            tool_cmd(
                &net,
                "rsync",
                &["-a", "-e", e, &format!("{}/", src.display()), &to],
            ),
            b"",
            T,
        );
        ok(&out, &format!("rsync push -e {e} {host}"));
        let from = format!("{host}:{}/", pushed.display());
        let out = run(
            tool_cmd(
                &net,
                "rsync",
                &["-a", "-e", e, &from, &format!("{}/", pulled.display())],
            ),
            b"",
            T,
        );
        ok(&out, &format!("rsync pull -e {e} {host}"));
        same(&src.join("a.bin"), &pulled.join("a.bin"));
        same(&src.join("sub/b.txt"), &pulled.join("sub/b.txt"));
    }
    assert_eq!(Net::logins(&net.bastion), 2);
}

#[test]
fn git_ssh_command_msh_clones_over_ssh_urls() {
    let net = Net::new("tt-git");
    home_config(&net);
    let git = |args: &[&str]| {
        let out = run(tool_cmd(&net, "git", args), b"", T);
        ok(&out, &format!("git {args:?}"));
        out
    };
    git(&["init", "-q", "work"]);
    std::fs::write(net.dir.join("work/hello.txt"), "hello over msh\n").unwrap();
    git(&["-C", "work", "add", "hello.txt"]);
    git(&[
        "-C",
        "work",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "commit",
        "-qm",
        "one",
    ]);
    git(&["clone", "-q", "--bare", "work", "repo.git"]);
    let repo = net.dir.join("repo.git");
    let msh = bin("msh").display().to_string();
    let port = net.mshd.port;
    let sport = net.sshd_target.port;
    let user = net.mshd.user.clone();
    let cases = [
        // ssh:// with a port (git passes -p after probing msh with -G).
        (
            msh.clone(),
            format!("ssh://{user}@127.0.0.1:{port}{}", repo.display()),
            "c1",
        ),
        (msh.clone(), format!("ssh://target{}", repo.display()), "c2"),
        // scp-like syntax.
        (msh.clone(), format!("target:{}", repo.display()), "c3"),
        (msh.clone(), format!("starget:{}", repo.display()), "c4"),
        (
            format!("{msh} -J bastion"),
            format!("target:{}", repo.display()),
            "c5",
        ),
        (
            msh.clone(),
            format!("ssh://{user}@127.0.0.1:{sport}{}", repo.display()),
            "c6",
        ),
    ];
    for (ssh, url, dest) in &cases {
        let mut c = tool_cmd(&net, "git", &["clone", "-q", url, dest]);
        c.env("GIT_SSH_COMMAND", ssh);
        let out = run(c, b"", T);
        ok(&out, &format!("GIT_SSH_COMMAND={ssh} git clone {url}"));
        assert_eq!(
            std::fs::read_to_string(net.dir.join(dest).join("hello.txt")).unwrap(),
            "hello over msh\n",
            "{url}"
        );
    }
    assert_eq!(Net::logins(&net.bastion), 1);
}
