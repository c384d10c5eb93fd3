//! What became of each host, and how `msh --hosts` reports it: the JSON object per host
//! (`--json`), the progress line, the summary on stderr and the exit status (0 when every
//! command exited 0, 255 when any host failed, else 1).

use std::time::Duration;

use serde_json::{Map, Value};

use super::super::sanitize::for_terminal;
use super::output::Capture;

/// How a host ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// The command ran and exited with this status.
    Exited(u32),
    /// The command ran and was killed by this signal (name without `SIG`).
    Signalled(String),
    /// msh could not resolve, connect, verify, authenticate, start the command or see it
    /// end (timeout, connection lost): the one-line reason.
    Failed(String),
}

/// One host's result.
#[derive(Debug)]
pub(super) struct HostResult {
    pub label: String,
    pub ending: Ending,
    pub duration: Duration,
    /// Kept only with `--json`.
    pub stdout: Capture,
    pub stderr: Capture,
}

/// The `--json` line for a host: `host`, one of `exit_status` / `exit_signal` / `error`,
/// `stdout`, `stderr` (UTF-8, lossy), `duration_ms`; `stdout_dropped` / `stderr_dropped`
/// (bytes past the 16 MiB kept) only when output was dropped.
pub(super) fn json_line(r: &HostResult) -> String {
    let mut m = Map::new();
    m.insert("host".into(), r.label.clone().into());
    match &r.ending {
        Ending::Exited(n) => m.insert("exit_status".into(), (*n).into()),
        Ending::Signalled(s) => m.insert("exit_signal".into(), s.clone().into()),
        Ending::Failed(e) => m.insert("error".into(), e.clone().into()),
    };
    m.insert("stdout".into(), r.stdout.text().into());
    m.insert("stderr".into(), r.stderr.text().into());
    if r.stdout.dropped > 0 {
        m.insert("stdout_dropped".into(), r.stdout.dropped.into());
    }
    if r.stderr.dropped > 0 {
        m.insert("stderr_dropped".into(), r.stderr.dropped.into());
    }
    let ms = u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX);
    m.insert("duration_ms".into(), ms.into());
    let mut line = Value::Object(m).to_string();
    line.push('\n');
    line
}

/// Running counts, for the progress line.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub done: usize,
    pub non_zero: usize,
    pub failed: usize,
}

impl Tally {
    pub(super) fn add(&mut self, ending: &Ending) {
        self.done += 1;
        match ending {
            Ending::Exited(0) => {}
            Ending::Exited(_) | Ending::Signalled(_) => self.non_zero += 1,
            Ending::Failed(_) => self.failed += 1,
        }
    }

    pub(super) fn progress(&self, total: usize) -> String {
        format!(
            "msh: {}/{total} hosts done, {} non-zero, {} failed",
            self.done, self.non_zero, self.failed
        )
    }
}

/// The summary for stderr, hosts in list order:
///
/// ```text
/// msh: 4 hosts: 2 succeeded, 1 exited non-zero, 1 failed
/// msh: succeeded: web1, web2
/// msh: non-zero: db1: exit status 3
/// msh: failed: db2: connect to 10.0.0.9 port 22: Connection refused
/// ```
pub(super) fn summary(results: &[HostResult]) -> String {
    let ok: Vec<&str> = results
        .iter()
        .filter(|r| r.ending == Ending::Exited(0))
        .map(|r| r.label.as_str())
        .collect();
    let mut non_zero = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match &r.ending {
            Ending::Exited(0) => {}
            Ending::Exited(n) => non_zero.push(format!("{}: exit status {n}", r.label)),
            Ending::Signalled(s) => {
                non_zero.push(format!("{}: killed by signal {}", r.label, one_line(s)))
            }
            Ending::Failed(e) => failed.push(format!("{}: {}", r.label, one_line(e))),
        }
    }
    let mut out = format!(
        "msh: {} host{}: {} succeeded, {} exited non-zero, {} failed\n",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        ok.len(),
        non_zero.len(),
        failed.len()
    );
    if !ok.is_empty() {
        out.push_str(&format!("msh: succeeded: {}\n", ok.join(", ")));
    }
    for line in non_zero {
        out.push_str(&format!("msh: non-zero: {line}\n"));
    }
    for line in failed {
        out.push_str(&format!("msh: failed: {line}\n"));
    }
    out
}

/// Text that can come from a server (a signal name, a disconnect or channel-refusal reason)
/// with its control characters shown escaped, as single msh prints it, on one line.
fn one_line(text: &str) -> String {
    for_terminal(text).replace('\n', " ")
}

/// 0 when every command exited 0; 255 when any host failed; otherwise 1.
pub(super) fn exit_code(results: &[HostResult]) -> i32 {
    if results
        .iter()
        .any(|r| matches!(r.ending, Ending::Failed(_)))
    {
        255
    } else if results.iter().all(|r| r.ending == Ending::Exited(0)) {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(label: &str, ending: Ending) -> HostResult {
        HostResult {
            label: label.into(),
            ending,
            duration: Duration::from_millis(1500),
            stdout: Capture::default(),
            stderr: Capture::default(),
        }
    }

    #[test]
    fn exit_status_is_255_on_any_failure_else_1_on_any_non_zero() {
        let ok = || result("a", Ending::Exited(0));
        assert_eq!(exit_code(&[ok(), ok()]), 0);
        assert_eq!(exit_code(&[ok(), result("b", Ending::Exited(3))]), 1);
        assert_eq!(
            exit_code(&[ok(), result("b", Ending::Signalled("KILL".into()))]),
            1
        );
        assert_eq!(
            exit_code(&[
                result("b", Ending::Exited(3)),
                result("c", Ending::Failed("x".into()))
            ]),
            255
        );
    }

    #[test]
    fn summary_names_each_host_with_its_status_or_reason() {
        let s = summary(&[
            result("a", Ending::Exited(0)),
            result("b", Ending::Exited(3)),
            result("c", Ending::Signalled("TERM".into())),
            result("d", Ending::Failed("closed by d: bye\x1b[2J\nnow".into())),
            result("e", Ending::Exited(0)),
        ]);
        assert_eq!(
            s,
            "msh: 5 hosts: 2 succeeded, 2 exited non-zero, 1 failed\n\
             msh: succeeded: a, e\n\
             msh: non-zero: b: exit status 3\n\
             msh: non-zero: c: killed by signal TERM\n\
             msh: failed: d: closed by d: bye\\x1b[2J now\n"
        );
    }

    #[test]
    fn json_has_one_of_status_signal_error() {
        let mut r = result("ops@[::1]:22", Ending::Exited(3));
        r.stdout.push(b"out\n\x1b[31m\xff");
        let v: Value = serde_json::from_str(&json_line(&r)).unwrap();
        assert_eq!(v["host"], "ops@[::1]:22");
        assert_eq!(v["exit_status"], 3);
        assert_eq!(v["stdout"], "out\n\u{1b}[31m\u{fffd}");
        assert_eq!(v["duration_ms"], 1500);
        assert!(v.get("error").is_none() && v.get("stdout_dropped").is_none());
        let v: Value =
            serde_json::from_str(&json_line(&result("h", Ending::Failed("no".into())))).unwrap();
        assert_eq!(v["error"], "no");
        assert!(v.get("exit_status").is_none());
    }
}
