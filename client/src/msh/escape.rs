//! OpenSSH's escape sequences on the keyboard input of an interactive session (ssh(1),
//! ESCAPE CHARACTERS): the escape character (default `~`) is special only as the first
//! character typed on a line — right after a CR or LF the user sent, or at the very start of
//! the session. Then `~.` disconnects, `~^Z` suspends msh, `~?` lists the escapes, `~~`
//! sends one `~`; any other character after it is sent together with the `~`, as ssh does.
//!
//! `EscapeFilter` is the pure state machine: bytes in, bytes to send and actions out, in
//! order. It keeps its state between reads, so an escape split across two reads still works.

use anyhow::{bail, Result};

/// ssh's default escape character.
pub(super) const DEFAULT_ESCAPE: u8 = b'~';

/// What the user asked msh itself to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// `~.`: close the connection now, even when the server no longer answers.
    Disconnect,
    /// `~?`: print the list of escapes locally.
    Help,
    /// `~^Z`: restore the terminal and stop msh until the shell continues it.
    Suspend,
}

/// One piece of filtered input, in the order typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    /// Bytes for the remote side.
    Data(Vec<u8>),
    Action(Action),
}

/// The escape state machine of one session.
#[derive(Debug)]
pub(super) struct EscapeFilter {
    escape: u8,
    /// The last byte sent was CR or LF (true at the start: ssh's `last_was_cr = 1`).
    at_line_start: bool,
    /// The escape character was seen at a line start; the next byte decides.
    pending: bool,
}

impl EscapeFilter {
    pub(super) fn new(escape: u8) -> EscapeFilter {
        EscapeFilter {
            escape,
            at_line_start: true,
            pending: false,
        }
    }

    /// Filters one read of input. After `Action::Disconnect` the rest of `input` is dropped:
    /// the session is over.
    pub(super) fn feed(&mut self, input: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut data = Vec::with_capacity(input.len());
        for &b in input {
            if self.pending {
                self.pending = false;
                let action = match b {
                    b'.' => Some(Action::Disconnect),
                    b'?' => Some(Action::Help),
                    0x1a => Some(Action::Suspend),
                    _ => None,
                };
                if let Some(action) = action {
                    if !data.is_empty() {
                        events.push(Event::Data(std::mem::take(&mut data)));
                    }
                    events.push(Event::Action(action));
                    if action == Action::Disconnect {
                        return events;
                    }
                    // Still at a line start, as in ssh: `~?~.` works without a newline.
                    continue;
                }
                // `~~` sends one `~`; `~x` sends both, as ssh does for escapes it lacks.
                if b != self.escape {
                    data.push(self.escape);
                }
            } else if self.at_line_start && b == self.escape {
                self.pending = true;
                continue;
            }
            self.at_line_start = b == b'\r' || b == b'\n';
            data.push(b);
        }
        if !data.is_empty() {
            events.push(Event::Data(data));
        }
        events
    }
}

/// Parses `-e` / `EscapeChar` as ssh does: one character, `^` and a character from `@` to
/// DEL (a control character: `^]` is 0x1d), or `none`, which disables escapes (`Ok(None)`).
pub(super) fn parse_escape_char(v: &str) -> Result<Option<u8>> {
    match v.as_bytes() {
        [b'^', c] if (64..128).contains(c) => Ok(Some(c & 31)),
        [c] => Ok(Some(*c)),
        _ if v == "none" => Ok(None),
        _ => bail!(
            "bad escape character {v:?}: expected one character (e.g. ~), ^ and a letter \
             (e.g. ^]), or none"
        ),
    }
}

/// The escape character as a user types it: `~`, or `^]` for a control character.
pub(super) fn display(escape: u8) -> String {
    match escape {
        0..=31 => format!("^{}", char::from(escape + 64)),
        127 => "^?".to_string(),
        _ => char::from(escape).to_string(),
    }
}

/// The `~?` text, with CRLF line ends because the terminal is in raw mode.
pub(super) fn help_text(escape: u8) -> String {
    let e = display(escape);
    format!(
        "{e}?\r\n\
         Supported escape sequences:\r\n \
         {e}.   - terminate connection\r\n \
         {e}^Z  - suspend msh\r\n \
         {e}?   - this message\r\n \
         {e}{e}   - send the escape character by typing it twice\r\n\
         (Note that escapes are only recognized immediately after newline.)\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &[u8]) -> Event {
        Event::Data(s.to_vec())
    }

    fn act(a: Action) -> Event {
        Event::Action(a)
    }

    /// Feeds each piece in turn and concatenates the events, merging adjacent data.
    fn run(escape: u8, pieces: &[&[u8]]) -> Vec<Event> {
        let mut f = EscapeFilter::new(escape);
        let mut out: Vec<Event> = Vec::new();
        for p in pieces {
            for ev in f.feed(p) {
                match (out.last_mut(), ev) {
                    (Some(Event::Data(prev)), Event::Data(d)) => prev.extend_from_slice(&d),
                    (_, ev) => out.push(ev),
                }
            }
        }
        out
    }

    #[test]
    fn disconnect_after_cr_and_at_session_start() {
        assert_eq!(
            run(b'~', &[b"ls\r~."]),
            vec![data(b"ls\r"), act(Action::Disconnect)]
        );
        assert_eq!(run(b'~', &[b"~."]), vec![act(Action::Disconnect)]);
        assert_eq!(
            run(b'~', &[b"x\n~.more"]),
            vec![data(b"x\n"), act(Action::Disconnect)]
        );
    }

    #[test]
    fn escape_char_mid_line_is_plain_data() {
        assert_eq!(run(b'~', &[b"x~."]), vec![data(b"x~.")]);
        assert_eq!(run(b'~', &[b"cd ~/src\r"]), vec![data(b"cd ~/src\r")]);
    }

    #[test]
    fn split_across_reads() {
        assert_eq!(
            run(b'~', &[b"a\r", b"~", b"."]),
            vec![data(b"a\r"), act(Action::Disconnect)]
        );
        assert_eq!(
            run(b'~', &[b"a\r~", b"~b"]),
            vec![data(b"a\r~b")],
            "~~ split over reads sends one ~"
        );
        // A read that ends in a lone `~` sends nothing yet.
        let mut f = EscapeFilter::new(b'~');
        assert_eq!(f.feed(b"\r~"), vec![data(b"\r")]);
        assert_eq!(f.feed(b"x"), vec![data(b"~x")]);
    }

    #[test]
    fn double_escape_sends_one_and_ends_the_line_start() {
        assert_eq!(run(b'~', &[b"\r~~."]), vec![data(b"\r~.")]);
        assert_eq!(run(b'~', &[b"~~~~"]), vec![data(b"~~~")]);
    }

    #[test]
    fn unsupported_escape_passes_through_with_the_escape_char() {
        assert_eq!(run(b'~', &[b"\r~B"]), vec![data(b"\r~B")]);
        assert_eq!(run(b'~', &[b"~C"]), vec![data(b"~C")]);
        // `~` then Enter: both sent, and the Enter starts a new line for the next escape.
        assert_eq!(
            run(b'~', &[b"~\r~."]),
            vec![data(b"~\r"), act(Action::Disconnect)]
        );
    }

    #[test]
    fn help_and_suspend_keep_the_line_start() {
        assert_eq!(
            run(b'~', &[b"ab\r~?~."]),
            vec![data(b"ab\r"), act(Action::Help), act(Action::Disconnect)]
        );
        assert_eq!(
            run(b'~', &[b"\r~\x1a", b"ls\r"]),
            vec![data(b"\r"), act(Action::Suspend), data(b"ls\r")]
        );
    }

    #[test]
    fn other_escape_character() {
        // ^] as escape: `~` is plain data, `^].` disconnects.
        assert_eq!(run(0x1d, &[b"~.\r"]), vec![data(b"~.\r")]);
        assert_eq!(
            run(0x1d, &[b"\r\x1d."]),
            vec![data(b"\r"), act(Action::Disconnect)]
        );
        assert_eq!(run(0x1d, &[b"\x1d\x1d"]), vec![data(b"\x1d")]);
    }

    #[test]
    fn parse_like_ssh() {
        assert_eq!(parse_escape_char("~").unwrap(), Some(b'~'));
        assert_eq!(parse_escape_char("^]").unwrap(), Some(0x1d));
        assert_eq!(parse_escape_char("^a").unwrap(), Some(1));
        assert_eq!(parse_escape_char("^").unwrap(), Some(b'^'));
        assert_eq!(parse_escape_char("none").unwrap(), None);
        for bad in ["", "ab", "^1", "é", "None"] {
            let e = parse_escape_char(bad).unwrap_err();
            assert!(
                format!("{e}").contains("bad escape character"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn help_lists_the_escapes_with_crlf() {
        let h = help_text(b'~');
        assert!(h.starts_with("~?\r\nSupported escape sequences:\r\n ~.   - terminate"));
        assert!(h.contains(" ~~   - send the escape character"));
        assert!(!h.replace("\r\n", "").contains('\n'));
        assert!(help_text(0x1d).contains(" ^].   - terminate connection"));
        assert_eq!(display(0x1d), "^]");
    }
}
