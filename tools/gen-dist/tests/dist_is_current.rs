//! The committed `dist/` is exactly what the generator writes from today's clap definitions
//! and config key table, so it cannot go stale: after changing a flag, a help text or a
//! config key, run `scripts/gen-dist.sh` and commit `dist/`.

// A test file: a failed read is the test failing.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist")
}

fn committed(dir: &Path, rel: &Path, out: &mut BTreeSet<PathBuf>) {
    for entry in std::fs::read_dir(dir.join(rel)).unwrap() {
        let entry = entry.unwrap();
        let rel = rel.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            committed(dir, &rel, out);
        } else {
            out.insert(rel);
        }
    }
}

#[test]
fn dist_is_what_the_generator_writes() {
    let generated = msh_gen_dist::files().unwrap();
    let mut stale = Vec::new();
    for (rel, bytes) in &generated {
        match std::fs::read(dist().join(rel)) {
            Ok(old) if &old == bytes => {}
            Ok(_) => stale.push(format!("{} differs", rel.display())),
            Err(e) => stale.push(format!("{} missing ({e})", rel.display())),
        }
    }
    let mut on_disk = BTreeSet::new();
    for sub in ["man", "completions"] {
        committed(&dist(), Path::new(sub), &mut on_disk);
    }
    let wanted: BTreeSet<PathBuf> = generated.iter().map(|(p, _)| p.clone()).collect();
    for extra in on_disk.difference(&wanted) {
        stale.push(format!("{} is no longer generated", extra.display()));
    }
    assert!(
        stale.is_empty(),
        "dist/ is stale; run scripts/gen-dist.sh and commit dist/:\n  {}",
        stale.join("\n  ")
    );
}

/// Every config key of the table is in mshd.toml(5), and the pages are roff (a `.TH`
/// header with the right section); `man -l` renders them when man-db is installed.
#[test]
fn man_pages_are_roff_with_the_right_sections() {
    let files = msh_gen_dist::files().unwrap();
    let page = |name: &str| -> String {
        let (_, b) = files
            .iter()
            .find(|(p, _)| p == Path::new("man").join(name).as_path())
            .unwrap_or_else(|| panic!("no man/{name}"));
        String::from_utf8(b.clone()).unwrap()
    };
    for (name, th) in [
        ("msh.1", ".TH msh 1"),
        ("msh-keygen.1", ".TH msh-keygen 1"),
        ("msh-keygen-generate.1", ".TH msh-keygen-generate 1"),
        ("mshd.8", ".TH mshd 8"),
        ("mshd.toml.5", ".TH MSHD.TOML 5"),
    ] {
        let text = page(name);
        assert!(text.contains(th), "{name}: no `{th}`:\n{text}");
    }
    let toml5 = page("mshd.toml.5");
    for key in msh_server::config::keys::KEYS {
        assert!(
            toml5.contains(&format!("\\fB{}\\fR", key.name)),
            "{}",
            key.name
        );
    }
    assert!(page("msh.1").contains("\\-\\-pin"), "msh(1) lacks --pin");
    assert!(
        page("mshd.8").contains("\\-\\-check\\-config"),
        "mshd(8) lacks --check-config"
    );
}

/// `man -l` renders every committed page without a groff warning (scripts/test.sh installs
/// man-db). Warnings go to stderr, e.g. for an unknown macro or a bad escape.
#[test]
fn man_renders_every_committed_page() {
    let mut pages = BTreeSet::new();
    committed(&dist(), Path::new("man"), &mut pages);
    assert!(pages.len() >= 4, "{pages:?}");
    for rel in pages {
        let path = dist().join(&rel);
        let out = std::process::Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "")
            .env("MANROFFOPT", "-ww")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap_or_else(|e| panic!("man -l: {e} (install man-db; scripts/test.sh does)"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "man -l {}: {stderr}", rel.display());
        assert!(
            stderr.trim().is_empty(),
            "man -l {}: {stderr}",
            rel.display()
        );
        assert!(
            stdout.contains("NAME"),
            "man -l {}:\n{stdout}",
            rel.display()
        );
    }
}
