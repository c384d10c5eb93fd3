//! Fuzzes mshd's TOML config (`msh_server::config`, server/src/config.rs): `parse_file`, then
//! `Settings::resolve` with no command-line overrides.
//! Besides "no panic", it asserts that every error names the file it was given (users rely
//! on `file:line` / `file: key` errors), and that the effective config `to_toml()` prints
//! (what `mshd --check-config` shows) is itself a valid config that resolves to the same
//! effective config: printing, parsing and resolving again changes nothing.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use msh_server::config::{parse_file, Overrides, Settings};

const PATH: &str = "fuzz.toml";
const AGAIN: &str = "effective.toml";

fn resolve(text: &str, path: &str) -> anyhow::Result<Settings> {
    let path = Path::new(path);
    let file = parse_file(text, path)?;
    Settings::resolve(file, path, &Overrides::default(), false)
}

fuzz_target!(|data: &[u8]| {
    // The file is read with read_to_string, so only UTF-8 reaches parse_file.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let settings = match resolve(text, PATH) {
        Ok(s) => s,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(PATH),
                "error does not start with the config path: {msg:?} (full: {e:#})"
            );
            return;
        }
    };
    let printed = settings
        .to_toml()
        .unwrap_or_else(|e| panic!("to_toml failed: {e:#}\ninput: {text:?}"));
    let again = resolve(&printed, AGAIN).unwrap_or_else(|e| {
        panic!("the printed effective config does not load: {e:#}\nprinted:\n{printed}")
    });
    let reprinted = again
        .to_toml()
        .unwrap_or_else(|e| panic!("to_toml of the reloaded config failed: {e:#}"));
    assert_eq!(
        printed, reprinted,
        "effective config changed by a print/parse round trip"
    );
    // resolve() fills defaults and checks values: what it returns is usable as is.
    assert!(!settings.listen.is_empty());
    assert!(!settings.host_keys.is_empty());
    assert!(settings.max_auth_tries >= 1);
    let m = settings.max_startups;
    assert!(m.start <= m.full && m.rate <= 100 && m.full > 0, "{m:?}");
    for (name, cmd) in &settings.subsystems {
        assert!(
            !name.trim().is_empty() && !cmd.trim().is_empty(),
            "{name:?} = {cmd:?}"
        );
    }
});
