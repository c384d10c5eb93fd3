//! Fuzzes `msh_common::pattern` (OpenSSH `*`/`?`/`!` pattern lists). The input is a name and
//! a pattern list separated by the first NUL byte (or split in the middle when there is
//! none). Besides "no panic, no hang", `glob_match` is compared with a plain dynamic-
//! programming matcher and `match_list` with a direct reading of OpenSSH's
//! `match_pattern_list`, so a wrong answer fails as loudly as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msh_common::pattern::{glob_match, match_list, ListMatch};

/// Reference glob: `dp[i][j]` = does `s[i..]` match `p[j..]`.
fn reference_glob(s: &[char], p: &[char]) -> bool {
    let mut dp = vec![vec![false; p.len() + 1]; s.len() + 1];
    dp[s.len()][p.len()] = true;
    for i in (0..=s.len()).rev() {
        for j in (0..p.len()).rev() {
            dp[i][j] = match p[j] {
                '*' => dp[i][j + 1] || (i < s.len() && dp[i + 1][j]),
                c => i < s.len() && (c == '?' || c == s[i]) && dp[i + 1][j + 1],
            };
        }
    }
    dp[0][0]
}

fn reference_list(s: &str, list: &str, ignore_case: bool) -> ListMatch {
    let fold = |t: &str| {
        if ignore_case {
            t.to_ascii_lowercase()
        } else {
            t.to_string()
        }
    };
    let s: Vec<char> = fold(s).chars().collect();
    let mut result = ListMatch::NoMatch;
    for item in list.split(',') {
        let (negated, pat) = match item.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, item),
        };
        let pat: Vec<char> = fold(pat).chars().collect();
        if reference_glob(&s, &pat) {
            if negated {
                return ListMatch::Negated;
            }
            result = ListMatch::Matched;
        }
    }
    result
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (name, list) = match text.split_once('\0') {
        Some(pair) => pair,
        None => {
            let mid = (0..=text.len() / 2)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text.split_at(mid)
        }
    };
    // The reference is quadratic; keep its inputs small so the fuzzer stays fast. The
    // matcher under test still sees every input.
    let small = name.len() <= 256 && list.len() <= 256;
    for ignore_case in [false, true] {
        let got = match_list(name, list, ignore_case);
        if small {
            assert_eq!(
                got,
                reference_list(name, list, ignore_case),
                "match_list({name:?}, {list:?}, ignore_case={ignore_case})"
            );
        }
    }
    let _ = match_list(list, name, true);
    assert!(
        glob_match(name, name),
        "{name:?} must match itself as a pattern"
    );
    assert!(glob_match(name, "*"), "{name:?} must match *");
    if small {
        let (s, p): (Vec<char>, Vec<char>) = (name.chars().collect(), list.chars().collect());
        assert_eq!(
            glob_match(name, list),
            reference_glob(&s, &p),
            "glob_match({name:?}, {list:?})"
        );
    }
});
