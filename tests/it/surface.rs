//! The host crate's public surface is a decision, not an accident: the
//! names `runway_host` offers (what `lib.rs` and each public layer's
//! module declare `pub` at their top) are listed in
//! `tests/fixtures/public-surface.txt`, and this test fails when they
//! part. Widen or narrow the surface on purpose: run the test with
//! `RUNWAY_BLESS=1` and commit the list beside the change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn host_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src")
}

/// `module::name` for every public name `file` declares at its top level.
fn declared(module: &str, file: &Path, out: &mut BTreeSet<String>) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut public_modules = Vec::new();
    let mut lines = text.lines().peekable();
    let mut hidden = false;
    while let Some(line) = lines.next() {
        if line.starts_with("#[doc(hidden)]") {
            hidden = true;
            continue;
        }
        let Some(rest) = line.strip_prefix("pub ") else {
            if !line.starts_with("#[") {
                hidden = false;
            }
            continue;
        };
        let was_hidden = std::mem::take(&mut hidden);
        let mut decl = rest.to_string();
        if decl.starts_with("use ") {
            while !decl.trim_end().ends_with(';') {
                match lines.next() {
                    Some(next) => decl.push_str(next.trim()),
                    None => break,
                }
            }
            for name in used_names(&decl) {
                out.insert(format!("{module}{name}"));
            }
            continue;
        }
        let words: Vec<&str> = decl
            .split(|c: char| c.is_whitespace() || "(<:{;=".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        let kinds = [
            "fn", "struct", "enum", "const", "static", "type", "trait", "mod",
        ];
        let Some(at) = words.iter().position(|w| kinds.contains(w)) else {
            continue;
        };
        let name = words[at + 1];
        if words[at] == "mod" {
            if !was_hidden {
                public_modules.push(name.to_string());
            }
            out.insert(format!("{module}{name}::"));
        } else {
            out.insert(format!("{module}{name}"));
        }
    }
    public_modules
}

/// The names a `use …;` declaration brings in (the last segment of each
/// path, or its `as` name).
fn used_names(decl: &str) -> Vec<String> {
    let body = decl
        .trim_start_matches("use ")
        .trim_end()
        .trim_end_matches(';');
    let inner = match (body.find('{'), body.rfind('}')) {
        (Some(open), Some(close)) => &body[open + 1..close],
        _ => body,
    };
    inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty() && *part != "self")
        .map(|part| match part.split_once(" as ") {
            Some((_, alias)) => alias.trim().to_string(),
            None => part.rsplit("::").next().unwrap_or(part).to_string(),
        })
        .collect()
}

fn surface() -> String {
    let src = host_src();
    let mut names = BTreeSet::new();
    for module in declared("", &src.join("lib.rs"), &mut names) {
        let file = [
            src.join(format!("{module}.rs")),
            src.join(&module).join("mod.rs"),
        ]
        .into_iter()
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("module {module} has no file"));
        // A public module inside a layer (the WIT bindings) is listed by
        // its name only.
        declared(&format!("{module}::"), &file, &mut names);
    }
    names.into_iter().map(|n| n + "\n").collect()
}

#[test]
fn the_public_surface_is_the_listed_one() {
    let listed_at = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/public-surface.txt");
    let now = surface();
    if std::env::var_os("RUNWAY_BLESS").is_some() {
        std::fs::write(&listed_at, &now).unwrap();
    }
    let listed = std::fs::read_to_string(&listed_at).unwrap_or_default();
    let (now_set, listed_set): (BTreeSet<&str>, BTreeSet<&str>) =
        (now.lines().collect(), listed.lines().collect());
    let added: Vec<_> = now_set.difference(&listed_set).collect();
    let gone: Vec<_> = listed_set.difference(&now_set).collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "the public surface changed: new {added:?}, gone {gone:?}; if on purpose, run with \
         RUNWAY_BLESS=1 and commit tests/fixtures/public-surface.txt"
    );
    assert!(
        now_set.len() <= 250,
        "{} public names: the surface is meant to be small",
        now_set.len()
    );
}
