//! OpenSSH pattern matching (`match.c`): `*` and `?` wildcards, comma-separated lists with
//! `!` negation. Used by known_hosts host fields and authorized_keys `from=`.

/// Outcome of matching a name against a pattern list, as OpenSSH's `match_pattern_list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// A positive pattern matched and no negated one did.
    Matched,
    /// A negated pattern (`!pat`) matched: the whole list is a definite no.
    Negated,
    /// Nothing matched.
    NoMatch,
}

/// Glob match of `s` against `pattern` with `*` (any run) and `?` (any one char).
pub fn glob_match(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Iterative matcher with single backtrack point: linear-ish, no recursion blow-up on
    // hostile patterns like `*a*a*a*a*b`.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == s.get(si) => {
                si += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Matches `s` against a comma-separated pattern list. A matching negated entry wins over
/// any positive match, as in OpenSSH. With `ignore_case`, both sides are lowercased
/// (host names are case-insensitive).
pub fn match_list(s: &str, list: &str, ignore_case: bool) -> ListMatch {
    let s = if ignore_case {
        s.to_ascii_lowercase()
    } else {
        s.to_string()
    };
    let mut result = ListMatch::NoMatch;
    for item in list.split(',') {
        let (negated, pat) = match item.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, item),
        };
        let pat = if ignore_case {
            pat.to_ascii_lowercase()
        } else {
            pat.to_string()
        };
        if glob_match(&s, &pat) {
            if negated {
                return ListMatch::Negated;
            }
            result = ListMatch::Matched;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_basics() {
        assert!(glob_match("host.example.com", "*.example.com"));
        assert!(glob_match("a", "?"));
        assert!(!glob_match("ab", "?"));
        assert!(glob_match("", "*"));
        assert!(!glob_match("abc", "*d"));
        assert!(glob_match("10.0.0.5", "10.0.0.?"));
        assert!(glob_match("aaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*b"));
    }

    #[test]
    fn negation_wins() {
        assert_eq!(
            match_list("bad.example.com", "*.example.com,!bad.example.com", true),
            ListMatch::Negated
        );
        assert_eq!(
            match_list("good.example.com", "*.example.com,!bad.example.com", true),
            ListMatch::Matched
        );
        assert_eq!(
            match_list("other", "*.example.com", true),
            ListMatch::NoMatch
        );
        assert_eq!(match_list("HOST", "host", true), ListMatch::Matched);
    }
}
