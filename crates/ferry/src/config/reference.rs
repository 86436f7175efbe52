//! `ferry.example.toml` and the per-key tables of docs/configuration.md, made from the setting
//! definitions, and the tests that fail when the committed files drift from them.
//!
//! `ferry config example` prints the example file. To update both files after changing [`super::defs`], run
//! `FERRY_BLESS=1 cargo test -p ferry --bin ferry config::reference` and review the diff.

use std::fmt::Write as _;

use super::defs::DEFS;
use super::layer::Default;
#[cfg(test)]
use super::layer::{Def, Scope, TomlType};

const EXAMPLE_HEADER: &str = "\
# ferry.example.toml — every configuration key, commented out, set to its default.
#
# Copy this file to ./ferry.toml (read automatically when it exists) or point at it with
# `ferry --config FILE` / FERRY_CONFIG, then uncomment what you want to change.
# Environment variables (FERRY_<KEY>) and flags (--<key-with-dashes>) override this file.
# Unknown keys are an error. Relative paths are relative to the working directory.
# Full reference: docs/configuration.md
#
# This file is generated from the setting definitions (crates/ferry/src/config/defs.rs).
";

/// `ferry.example.toml`: every key, commented out (`commented`), at its default (or, for a key that
/// has none, an example).
pub fn example_file(commented: bool) -> String {
    let mut out = String::from(EXAMPLE_HEADER);
    let hash = if commented { "# " } else { "" };
    let mut group = None;
    for def in DEFS {
        if group.is_none_or(|g| !std::ptr::eq(g, def.group)) {
            group = Some(def.group);
            let title = format!("# --- {} ", def.group.title);
            let _ = write!(out, "\n{title:-<100}\n\n");
            wrap(&mut out, def.group.intro);
            if let Some(table) = def.group.table {
                let _ = writeln!(out, "{hash}[{table}]");
            }
        }
        wrap(&mut out, def.help);
        let raw = match def.default {
            Default::Is(raw) | Default::Derived(_, raw) => raw,
            Default::Unset(_) => {
                wrap(&mut out, "Not set by default; for example:");
                def.example
            }
        };
        let _ = writeln!(out, "{hash}{} = {}", def.short_key(), def.toml_literal(raw));
    }
    out
}

#[cfg(test)]
/// The table under a key's heading in docs/configuration.md.
pub fn doc_table(def: &Def) -> String {
    let ty = match def.list {
        true => format!("list; each item: {}", def.kind.doc),
        false => def.kind.doc.to_owned(),
    };
    let flag = match (def.list, def.kind.toml) {
        (true, _) => format!("`--{} VALUE,…` (comma-separated or repeated)", def.flag()),
        (false, TomlType::Boolean) => format!("`--{}[=BOOL]` (alone means `true`)", def.flag()),
        (false, _) => format!("`--{}`", def.flag()),
    };
    let env = match def.list {
        true => format!("`{}` (comma-separated)", def.env()),
        false => format!("`{}`", def.env()),
    };
    let scope = match def.scope {
        Scope::Global => " (every command, not only `ferry serve`)",
        Scope::Serve => "",
    };
    format!(
        "| | |\n|---|---|\n| Type | {ty} |\n| Default | {} |\n| Flag / env | {flag} / {env}{scope} |\n| Example | `{} = {}` |\n",
        def.default_doc(),
        def.short_key(),
        def.toml_literal(def.example)
    )
}

#[cfg(test)]
/// `doc` with the table under each key's heading replaced by [`doc_table`] (inserted where missing).
/// Errors list the definitions without a heading.
pub fn docs_with_tables(doc: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut lines = doc.lines().peekable();
    let mut seen = Vec::new();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let Some(def) = heading_key(line).and_then(|k| DEFS.iter().find(|d| d.key == k)) else {
            continue;
        };
        seen.push(def.key);
        while lines
            .peek()
            .is_some_and(|l| l.trim().is_empty() || l.starts_with('|'))
        {
            lines.next();
        }
        out.push('\n');
        out.push_str(&doc_table(def));
        out.push('\n');
    }
    let missing: Vec<_> = DEFS.iter().map(|d| d.key).filter(|k| !seen.contains(k)).collect();
    match missing.is_empty() {
        true => Ok(out),
        false => Err(format!(
            "docs/configuration.md lacks a `### `key`` section for: {}",
            missing.join(", ")
        )),
    }
}

#[cfg(test)]
/// `key` of a `### \`key\`` or `#### \`key\`` heading.
fn heading_key(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("#### `")
        .or_else(|| line.strip_prefix("### `"))?;
    rest.strip_suffix('`')
}

/// Appends `text` as `#` comment lines of at most 100 columns.
fn wrap(out: &mut String, text: &str) {
    for para in text.lines() {
        let mut line = String::from("#");
        for word in para.split_whitespace() {
            if line.len() + 1 + word.len() > 100 && line.len() > 1 {
                out.push_str(&line);
                out.push('\n');
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        if line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::layer::{find, merge, Layer};

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Compares a committed file with what the definitions make of it; `FERRY_BLESS=1` rewrites it.
    fn check_generated(rel: &str, want: &str) {
        let path = root().join(rel);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have == want {
            return;
        }
        if std::env::var("FERRY_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, want).expect("write");
            return;
        }
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
        panic!(
            "{rel} differs from the setting definitions (crates/ferry/src/config/defs.rs) from line {}:\n  \
             committed: {:?}\n  generated: {:?}\nRun `FERRY_BLESS=1 cargo test -p ferry --bin ferry config::reference` \
             to regenerate it.",
            line + 1,
            have.lines().nth(line).unwrap_or(""),
            want.lines().nth(line).unwrap_or("")
        );
    }

    #[test]
    fn example_file_is_generated_from_the_definitions() {
        check_generated("ferry.example.toml", &example_file(true));
    }

    #[test]
    fn configuration_tables_are_generated_from_the_definitions() {
        let path = root().join("docs/configuration.md");
        let doc = std::fs::read_to_string(path).expect("read docs/configuration.md");
        check_generated(
            "docs/configuration.md",
            &docs_with_tables(&doc).expect("every key"),
        );
    }

    #[test]
    fn every_documented_key_is_defined() {
        let doc = std::fs::read_to_string(root().join("docs/configuration.md")).expect("read");
        let keys = doc
            .split("## Keys")
            .nth(1)
            .expect("## Keys")
            .split("\n## ")
            .next()
            .unwrap_or("");
        for line in keys.lines() {
            if let Some(key) = heading_key(line) {
                let table = key.strip_prefix('[').and_then(|k| k.strip_suffix(']'));
                let known = match table {
                    Some(t) => DEFS.iter().any(|d| d.group.table == Some(t)),
                    None => find(key).is_some(),
                };
                assert!(
                    known,
                    "docs/configuration.md documents `{key}`, which is not a setting"
                );
            }
        }
    }

    #[test]
    fn every_default_and_example_is_valid() {
        for def in DEFS {
            let mut layer = Layer::new("example");
            layer.set(def.key, def.example);
            merge(&[&layer]).unwrap_or_else(|e| panic!("example of {}: {e:#}", def.key));
            assert!(
                !def.help.is_empty() && !def.help.ends_with('.'),
                "help of {}",
                def.key
            );
            assert!(def
                .key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'));
        }
        merge(&[]).expect("the defaults are valid");
    }

    #[test]
    fn the_example_file_loads_and_gives_the_defaults() {
        let example = Layer::from_toml(&example_file(false), "example").expect("parses");
        let from_example =
            super::super::build(&merge(&[&example]).expect("valid"), "example").expect("builds");
        let defaults = super::super::build(&merge(&[]).expect("valid"), "defaults").expect("builds");
        assert_eq!(from_example.data_dir, defaults.data_dir);
        assert_eq!(from_example.files_root, defaults.files_root);
        assert_eq!(from_example.users_db, defaults.users_db);
        assert_eq!(from_example.listen, defaults.listen);
        assert_eq!(from_example.ftpd.limits, defaults.ftpd.limits);
        assert_eq!(from_example.ftpd.protection, defaults.ftpd.protection);
        assert_eq!(from_example.ftpd.defender, defaults.ftpd.defender);
        assert_eq!(from_example.ftps.certificate, defaults.ftps.certificate);
        assert_eq!(from_example.sftp, defaults.sftp);
    }
}
