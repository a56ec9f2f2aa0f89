//! The library's modules form layers, and no module uses one above it: core types at the
//! bottom, then data -> augment -> encoders -> heads -> losses -> methods -> optim -> recipe ->
//! train -> eval -> embed -> search -> report -> workflows.
//!
//! The test reads every `crate::` path in the production code of `src/` (`use` lines, grouped
//! imports and paths written inline; test modules left out) and fails on any that points to a
//! module of the same or a higher layer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module with its layer. A new module must be placed here.
const LAYERS: &[(&str, u32)] = &[
    // Core types.
    ("error", 0),
    ("rng", 1),
    ("tensor_util", 1),
    ("device", 1),
    ("dist", 2),
    ("runtime", 1),
    ("progress", 1),
    ("image", 1),
    ("features", 1),
    ("seeding", 1),
    ("checkpoint", 2),
    ("plot", 3),
    // The data flow.
    ("data", 10),
    ("augment", 11),
    ("encoders", 12),
    ("heads", 13),
    ("losses", 14),
    ("methods", 15),
    ("optim", 16),
    ("recipe", 17),
    ("train", 18),
    ("eval", 19),
    ("embed", 20),
    ("search", 21),
    ("run_report", 22),
    ("workflow", 23),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source without its test module and without comments.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        // A test module: `#[cfg(test)]` then `mod ...`; everything after it is tests.
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        out.push_str(line.split("//").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// The top-level modules named by `crate::` paths in `code`.
fn used_modules(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` or a longer identifier ending in `crate`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c}`: the first identifier of each item at depth one.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && depth == 0 && !c.is_whitespace() => {
                        used.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            used.insert(ident(rest));
        }
    }
    used.remove("");
    used
}

#[test]
fn no_module_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut arrows = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let from =
            layer(&top).unwrap_or_else(|| panic!("module `{top}` has no layer: add it to LAYERS"));
        let code = production_code(&std::fs::read_to_string(file).unwrap());
        for used in used_modules(&code) {
            if used == top {
                continue;
            }
            arrows += 1;
            let to = layer(&used).unwrap_or_else(|| {
                panic!("{} uses `crate::{used}`, which has no layer", rel.display())
            });
            if to >= from {
                wrong.push(format!(
                    "{} (layer {from}) uses crate::{used} (layer {to})",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        arrows > 50,
        "only {arrows} arrows found: is the scan broken?"
    );
    assert!(wrong.is_empty(), "arrows going up:\n{}", wrong.join("\n"));
}

#[test]
fn the_scan_sees_every_kind_of_path() {
    let code = production_code(
        "use crate::data::Splits;\nuse crate::{error::Error, rng::{Rng, derive}};\n\
         fn f() { crate::eval::knn::predict(); } // crate::plot\n\
         #[cfg(test)]\nmod tests { use crate::workflow; }\n",
    );
    let used: Vec<String> = used_modules(&code).into_iter().collect();
    assert_eq!(used, ["data", "error", "eval", "rng"]);
}
