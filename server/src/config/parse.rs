//! The TOML text of `mshd.toml` to a [`FileConfig`], with errors that name the file, the line
//! and the key, and serde's messages reworded in the config file's terms.

use std::path::Path;

use anyhow::{bail, Result};

use super::{check_subsystem, keys, FileConfig};

/// Parses TOML text; errors name the file, the line and the key (toml's span gives the line,
/// [`key_spans`] the key it falls in): `FILE:LINE: key `KEY`: what is wrong, what is expected`.
pub fn parse_file(text: &str, path: &Path) -> Result<FileConfig> {
    let line_of = |offset: usize| text.get(..offset).unwrap_or("").matches('\n').count() + 1;
    let spans = key_spans(text);
    let mut file = toml::from_str::<FileConfig>(text).map_err(|e| {
        let at = e.span().map(|s| s.start);
        let msg = explain(e.message().trim_end());
        // The innermost key whose line (key to end of value) holds the error.
        let key = at.and_then(|o| {
            spans
                .iter()
                .filter(|(_, r)| r.contains(&o))
                .max_by_key(|(_, r)| r.start)
                .map(|(k, _)| k.as_str())
        });
        match (at.map(line_of), key) {
            (Some(l), Some(k)) => anyhow::anyhow!("{}:{l}: key `{k}`: {msg}", path.display()),
            (Some(l), None) => anyhow::anyhow!("{}:{l}: {msg}", path.display()),
            _ => anyhow::anyhow!("{}: {msg}", path.display()),
        }
    })?;
    file.lines = spans
        .iter()
        .map(|(k, r)| (k.clone(), line_of(r.start)))
        .collect();
    // Checked here, where the text is, so that the error names the line.
    for (name, cmd) in file.subsystems.iter().flatten() {
        if let Err(e) = check_subsystem(name, cmd.get_ref()) {
            bail!(
                "{}:{}: key `subsystems.{name}`: {e}",
                path.display(),
                line_of(cmd.span().start)
            );
        }
    }
    Ok(file)
}

/// Every key of the document with the byte range from the key to the end of its value: the
/// top-level keys and, one level down, the entries of a table (`subsystems.sftp`). Empty when
/// the text does not parse (the parse error then names the line itself).
fn key_spans(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let Ok(doc) = toml::de::DeTable::parse(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in doc.get_ref().iter() {
        let name = k.get_ref().to_string();
        let (ks, vs) = (k.span(), v.span());
        // A `[table]` header comes before its entries: the table spans all of them.
        out.push((name.clone(), ks.start.min(vs.start)..ks.end.max(vs.end)));
        if let Some(table) = v.get_ref().as_table() {
            for (ik, iv) in table.iter() {
                let (a, b) = (ik.span(), iv.span());
                out.push((
                    format!("{name}.{}", ik.get_ref()),
                    a.start.min(b.start)..a.end.max(b.end),
                ));
            }
        }
    }
    out
}

/// serde's words for a wrong type, in the config file's terms.
fn explain(msg: &str) -> String {
    // serde lists the fields it knows; the key table is the reference (and gives "did you
    // mean"), so the message and mshd.toml(5) name the same keys.
    let msg = if let Some(rest) = msg.strip_prefix("unknown field ") {
        let name = rest.split('`').nth(1).unwrap_or("");
        let known: Vec<&str> = keys::KEYS.iter().map(|k| k.name).collect();
        match keys::suggest(name) {
            Some(k) => format!("unknown key `{name}`: did you mean `{k}`? (see mshd.toml(5))"),
            None => format!(
                "unknown key `{name}`, expected one of: {} (see mshd.toml(5))",
                known.join(", ")
            ),
        }
    } else {
        msg.to_string()
    };
    msg.replace(
        "expected u32",
        "expected a whole number from 0 to 4294967295, without quotes",
    )
    .replace(
        "expected a boolean",
        "expected true or false, without quotes",
    )
    .replace(
        "expected a sequence",
        "expected a list of strings such as [\"a\", \"b\"]",
    )
    .replace(
        "expected a map",
        "expected a table such as { name = \"value\" }",
    )
}
