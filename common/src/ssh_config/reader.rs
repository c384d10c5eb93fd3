//! Reading one ssh_config file and its `Include`s into [`Directive`]s for one host: `Host`
//! blocks evaluated against the name given, `Match` refused or skipped, `IgnoreUnknown`
//! honoured, every line checked (also in blocks that do not apply, as ssh does). What the
//! values mean is the caller's business; this module only says which lines apply.
//!
//! The only I/O is reading the files (and listing directories for `Include` globs).

use std::path::{Path, PathBuf};

use super::keywords::is_openssh_keyword;
use super::lex::{host_block_matches, split_key_value, strip_comment};
use crate::pattern::{glob_match, match_list, ListMatch};
use crate::{Error, Result};

/// Most nested `Include`s followed, as OpenSSH's READCONF_MAX_DEPTH.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// One `Key Value` pair with where it came from, for error messages.
#[derive(Debug, Clone)]
pub struct Directive {
    /// The keyword as written (any case).
    pub key: String,
    /// The value, unquoted, surrounding spaces removed.
    pub value: String,
    /// Where it came from: `path:line` for a file, `-o #N` for the command line.
    pub origin: String,
    /// False for a config line in a `Host` block that does not match: its value is still
    /// checked (as ssh does) but not applied.
    pub active: bool,
}

/// How a config file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-F FILE`: written for msh, so every key must be one msh implements.
    Strict,
    /// `~/.ssh/config`: shared with ssh, so OpenSSH keywords msh does not implement and
    /// `Match` blocks are skipped (noted for -v).
    Lenient,
}

/// The keywords the program implements: only these come back as [`Directive`]s.
#[derive(Debug, Clone, Copy)]
pub struct Supported<'a> {
    /// Keywords handed back (compared without case).
    pub keywords: &'a [&'a str],
    /// The list error messages give after "msh accepts: ".
    pub listed: &'a str,
}

impl Supported<'_> {
    fn has(&self, keyword: &str) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }
}

/// Reads one ssh_config file and its `Include`s: collects the options (tagged `path:line`,
/// active or not for the host) and notes on what was skipped.
#[derive(Debug)]
pub struct Reader<'a> {
    /// The name given on the command line: `Host` patterns match it, as in ssh (HostName
    /// does not cause a second match).
    host: &'a str,
    home: Option<&'a Path>,
    mode: Mode,
    supported: Supported<'a>,
    /// The options read, in file order (Includes in place).
    pub directives: Vec<Directive>,
    /// What was skipped (path:line and why), for -v.
    pub notes: Vec<String>,
    /// The first `IgnoreUnknown` pattern list that applies.
    ignore_unknown: Option<String>,
}

impl<'a> Reader<'a> {
    /// A reader for `host` (the name as given); `home` resolves `~/` and relative Includes.
    pub fn new(
        host: &'a str,
        home: Option<&'a Path>,
        mode: Mode,
        supported: Supported<'a>,
    ) -> Self {
        Reader {
            host,
            home,
            mode,
            supported,
            directives: Vec::new(),
            notes: Vec::new(),
            ignore_unknown: None,
        }
    }

    /// Reads `path`. `shared`: the default file (or an included one), which ssh refuses when
    /// others could write it and which may be missing; a file the user named (`-F`) must
    /// exist and its mode is not checked, as in ssh.
    pub fn read(&mut self, path: &Path, shared: bool) -> Result<()> {
        self.read_file(path, 0, true, shared)
    }

    /// Reads `text` as if it were the file `path` (Includes in it are still read from disk).
    pub fn read_text(&mut self, path: &Path, text: &str) -> Result<()> {
        self.parse(path, text, 0, true)
    }

    /// Reads `path` at include `depth`. `enabled`: false when the `Include` that named the
    /// file sits in a block that does not apply, so nothing in it applies (it is still
    /// checked, as ssh does).
    fn read_file(&mut self, path: &Path, depth: usize, enabled: bool, shared: bool) -> Result<()> {
        let Some(text) = read_config_text(path, shared)? else {
            return Ok(());
        };
        self.parse(path, &text, depth, enabled)
    }

    fn parse(&mut self, path: &Path, text: &str, depth: usize, enabled: bool) -> Result<()> {
        let mut active = enabled;
        for (i, line) in text.lines().enumerate() {
            let at = format!("{}:{}", path.display(), i + 1);
            let t = strip_comment(line.trim());
            if t.is_empty() {
                continue;
            }
            let (key, value) = split_key_value(t)
                .ok_or_else(|| invalid(format!("{at}: expected \"Key Value\", got {t:?}")))?;
            let lower = key.to_ascii_lowercase();
            match lower.as_str() {
                "host" => {
                    // Host takes whitespace-separated patterns; one negated match cancels
                    // the block.
                    let pats: Vec<&str> = value.split_whitespace().collect();
                    if pats.is_empty() {
                        return Err(invalid(format!("{at}: Host needs at least one pattern")));
                    }
                    active = enabled && host_block_matches(self.host, &pats);
                }
                "match" => match self.mode {
                    Mode::Strict => {
                        return Err(invalid(format!(
                            "{at}: Match is not supported by msh; use Host blocks"
                        )))
                    }
                    Mode::Lenient => {
                        self.notes.push(format!(
                            "{at}: Match block skipped: msh does not evaluate Match conditions, \
                             so its options (up to the next Host or Match line) do not apply"
                        ));
                        active = false;
                    }
                },
                "include" => self.include(&at, &value, depth, active)?,
                "ignoreunknown" => {
                    if active && self.ignore_unknown.is_none() {
                        self.ignore_unknown = Some(value);
                    }
                }
                k if self.supported.has(k) => self.directives.push(Directive {
                    key,
                    value,
                    origin: at,
                    active,
                }),
                k if is_openssh_keyword(k) => match self.mode {
                    Mode::Strict => {
                        return Err(invalid(format!(
                            "{at}: unknown option {key:?} (an OpenSSH option msh does not \
                             implement); msh accepts: {}",
                            self.supported.listed
                        )))
                    }
                    Mode::Lenient => {
                        if active {
                            self.notes.push(format!(
                                "{at}: {key} is an OpenSSH option msh does not implement; ignored"
                            ));
                        }
                    }
                },
                k => {
                    let ignored = self.ignore_unknown.as_deref().is_some_and(|pats| {
                        match_list(k, &pats.replace(char::is_whitespace, ","), true)
                            == ListMatch::Matched
                    });
                    if !ignored {
                        return Err(invalid(format!(
                            "{at}: unknown option {key:?} (not an ssh_config keyword); msh \
                             accepts: {}{}",
                            self.supported.listed,
                            if self.mode == Mode::Lenient {
                                " (to keep it for another program, put \"IgnoreUnknown \
                                 KEYWORD\" above it, as for ssh)"
                            } else {
                                ""
                            }
                        )));
                    }
                    self.notes
                        .push(format!("{at}: {key} ignored (IgnoreUnknown)"));
                }
            }
        }
        Ok(())
    }

    /// `Include` at `at`: each glob pattern is relative to ~/.ssh unless absolute or `~/`;
    /// files are read in lexical order, each with its own Host state, as ssh does.
    fn include(&mut self, at: &str, value: &str, depth: usize, active: bool) -> Result<()> {
        if depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(invalid(format!(
                "{at}: Include nested more than {MAX_INCLUDE_DEPTH} deep (does a file include \
                 itself?)"
            )));
        }
        let args: Vec<&str> = value.split_whitespace().collect();
        if args.is_empty() {
            return Err(invalid(format!("{at}: Include needs a file name")));
        }
        for arg in args {
            let pattern = if let Some(rest) = arg.strip_prefix("~/") {
                let home = self.home.ok_or_else(|| {
                    invalid(format!("{at}: Include {arg}: no home directory for ~"))
                })?;
                home.join(rest)
            } else if arg.starts_with('~') {
                return Err(invalid(format!(
                    "{at}: Include {arg}: only ~/ (your own home) is supported"
                )));
            } else if arg.starts_with('/') {
                PathBuf::from(arg)
            } else {
                let home = self.home.ok_or_else(|| {
                    invalid(format!(
                        "{at}: Include {arg}: relative to ~/.ssh, but there is no home directory"
                    ))
                })?;
                home.join(".ssh").join(arg)
            };
            let files = glob_paths(&pattern)
                .map_err(|reason| invalid(format!("{at}: Include {arg}: {reason}")))?;
            if files.is_empty() {
                self.notes
                    .push(format!("{at}: Include {arg} matched no files"));
            }
            for file in files {
                if file.is_dir() {
                    self.notes.push(format!(
                        "{at}: Include {arg}: {} is a directory; skipped",
                        file.display()
                    ));
                    continue;
                }
                self.read_file(&file, depth + 1, active, true)?;
            }
        }
        Ok(())
    }
}

fn invalid(message: String) -> Error {
    Error::Invalid(message)
}

/// The text of a config file, or None when `shared` and it does not exist. A shared file
/// (~/.ssh/config or an included one) must not be writable by others, as ssh requires:
/// whoever can write it chooses where msh connects and which keys it trusts.
fn read_config_text(path: &Path, shared: bool) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let cannot =
        |e: std::io::Error| invalid(format!("cannot read config file {}: {e}", path.display()));
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if shared && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    let meta = file.metadata().map_err(cannot)?;
    if shared {
        let uid = nix::unistd::getuid().as_raw();
        if meta.uid() != 0 && meta.uid() != uid {
            return Err(invalid(format!(
                "bad owner of config file {}: owned by uid {}, not by you or root; fix with \
                 chown {uid} {}",
                path.display(),
                meta.uid(),
                path.display()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(invalid(format!(
                "bad permissions on config file {}: mode {:04o} lets others write it; fix with \
                 chmod go-w {}",
                path.display(),
                meta.mode() & 0o7777,
                path.display()
            )));
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot)?;
    Ok(Some(text))
}

/// Expands `*` and `?` in the components of the absolute path `pattern`, as glob(3) does
/// for ssh's `Include`: names starting with `.` only match a pattern starting with `.`;
/// results are sorted; a path without wildcards is returned if it exists.
fn glob_paths(pattern: &Path) -> std::result::Result<Vec<PathBuf>, &'static str> {
    use std::path::Component;
    let text = pattern.to_string_lossy();
    if text.contains('[') {
        return Err(
            "character classes ([...]) in Include patterns are not supported by msh; use * or ?",
        );
    }
    let mut paths = vec![PathBuf::new()];
    for comp in pattern.components() {
        match comp {
            Component::Normal(name) => {
                let name = name.to_string_lossy();
                if !name.contains(['*', '?']) {
                    for p in &mut paths {
                        p.push(name.as_ref());
                    }
                    continue;
                }
                let mut next = Vec::new();
                for dir in &paths {
                    // An unreadable directory matches nothing, as glob(3) without GLOB_ERR.
                    let Ok(entries) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let file_name = entry.file_name();
                        let Some(f) = file_name.to_str() else {
                            continue;
                        };
                        if f.starts_with('.') && !name.starts_with('.') {
                            continue;
                        }
                        if glob_match(f, &name) {
                            next.push(dir.join(f));
                        }
                    }
                }
                paths = next;
            }
            other => {
                for p in &mut paths {
                    p.push(other.as_os_str());
                }
            }
        }
    }
    paths.retain(|p| p.exists());
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPPORTED: Supported<'static> = Supported {
        keywords: &["Port", "User", "HostName"],
        listed: "Port, User, HostName",
    };

    type KeyValue = (String, String);

    /// Parses `text` as file `c` for `host`: the options that apply, as (key, value).
    fn parse(text: &str, host: &str, mode: Mode) -> Result<(Vec<KeyValue>, Vec<String>)> {
        let mut r = Reader::new(host, Some(Path::new("/home/me")), mode, SUPPORTED);
        r.read_text(Path::new("c"), text)?;
        let applied = r
            .directives
            .iter()
            .filter(|o| o.active)
            .map(|o| (o.key.clone(), o.value.clone()))
            .collect();
        Ok((applied, r.notes))
    }

    fn kv(v: &[(&str, &str)]) -> Vec<KeyValue> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Read leniently for host `h`, `text` applies `applied` and notes lines starting so.
    fn lenient_applies_with_notes(text: &str, applied: &[(&str, &str)], notes: &[&str]) {
        let (o, got) = parse(text, "h", Mode::Lenient).unwrap();
        assert_eq!(o, kv(applied));
        assert_eq!(got.len(), notes.len(), "{got:?}");
        for (note, want) in got.iter().zip(notes) {
            assert!(note.starts_with(want), "{got:?}");
        }
    }

    #[test]
    fn config_host_blocks() {
        let text = "Port 1000\nHost a* !ab\n  User alice\n  Port 2000\nHost *\n  User bob\n";
        let (o, _) = parse(text, "ac", Mode::Strict).unwrap();
        assert_eq!(
            o,
            kv(&[
                ("Port", "1000"),
                ("User", "alice"),
                ("Port", "2000"),
                ("User", "bob")
            ])
        );
        let (o, _) = parse(text, "ab", Mode::Strict).unwrap();
        assert_eq!(o.len(), 2);
        let e = parse("Match all\n", "x", Mode::Strict).unwrap_err();
        assert!(format!("{e}").contains("c:1"));
        // Unknown keys are errors even in blocks that do not apply.
        let e = parse("Host other\n\n  Frobnicate x\n", "x", Mode::Strict).unwrap_err();
        assert!(
            format!("{e}").contains("c:3: unknown option \"Frobnicate\""),
            "{e}"
        );
    }

    #[test]
    fn lenient_skips_unimplemented_openssh_keywords_with_notes() {
        let text = "Host *\n  ForwardAgent yes\n  ControlMaster auto\n  UseKeychain yes\n  Port 2\nHost other\n  LocalForward 1 x:2\n";
        lenient_applies_with_notes(
            text,
            &[("Port", "2")],
            &[
                "c:2: ForwardAgent is an OpenSSH option msh does not implement",
                "c:3: ControlMaster",
                "c:4: UseKeychain",
            ],
        );
        // -F is strict: the same file is an error naming the line.
        let e = parse(text, "h", Mode::Strict).unwrap_err();
        assert!(
            format!("{e}").starts_with(
                "c:2: unknown option \"ForwardAgent\" (an OpenSSH option msh does not \
                 implement); msh accepts: Port, User, HostName"
            ),
            "{e}"
        );
        // Not an OpenSSH keyword at all: an error in both modes, unless IgnoreUnknown.
        for mode in [Mode::Lenient, Mode::Strict] {
            let e = parse("Port 2\nFrobnicate yes\n", "h", mode).unwrap_err();
            assert!(
                format!("{e}").contains("c:2: unknown option \"Frobnicate\""),
                "{e}"
            );
        }
        let (o, notes) = parse(
            "IgnoreUnknown Frob*,Other\nFrobnicate yes\nPort 3\n",
            "h",
            Mode::Lenient,
        )
        .unwrap();
        assert_eq!(o, kv(&[("Port", "3")]));
        assert_eq!(
            notes,
            vec!["c:2: Frobnicate ignored (IgnoreUnknown)".to_string()]
        );
    }

    #[test]
    fn lenient_skips_match_blocks() {
        let text = "Match host h exec \"true\"\n  Port 1\n  ForwardAgent yes\nHost h\n  Port 2\n";
        lenient_applies_with_notes(text, &[("Port", "2")], &["c:1: Match block skipped"]);
        // Keys inside a skipped Match block must still be ssh_config keywords.
        let e = parse("Match all\n  Nonsense 1\n", "h", Mode::Lenient).unwrap_err();
        assert!(format!("{e}").contains("c:2: unknown option"), "{e}");
    }

    #[test]
    fn lines_of_blocks_that_do_not_apply_are_kept_inactive() {
        // The caller still checks their values, as ssh does.
        let mut r = Reader::new("h", None, Mode::Lenient, SUPPORTED);
        r.read_text(Path::new("c"), "Host other\n  Port abc\n")
            .unwrap();
        assert_eq!(r.directives.len(), 1);
        assert!(!r.directives[0].active);
        assert_eq!(r.directives[0].origin, "c:2");
    }

    #[test]
    fn include_without_home_or_of_another_user_is_an_error_naming_the_line() {
        let e = parse("\nInclude ~bob/x\n", "h", Mode::Lenient).unwrap_err();
        assert!(
            format!("{e}").starts_with("c:2: Include ~bob/x: only ~/"),
            "{e}"
        );
        let mut r = Reader::new("h", None, Mode::Lenient, SUPPORTED);
        let e = r.read_text(Path::new("c"), "Include x\n").unwrap_err();
        assert!(format!("{e}").contains("no home directory"), "{e}");
        let e = parse("Include /etc/[ab]\n", "h", Mode::Lenient).unwrap_err();
        assert!(format!("{e}").contains("character classes"), "{e}");
    }
}
