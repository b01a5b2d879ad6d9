//! The agent's layers, checked: every `crate::<module>` path in a top-level module of `src/`
//! names a module of a lower layer, so dependencies point one way and no import cycle can
//! come back unnoticed. The layers are the README's architecture section, bottom first.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Bottom first. A module may use the modules of the layers below its own, never its own
/// layer's nor a higher one's.
const LAYERS: &[&[&str]] = &[
    &["units", "stdio"],
    &["exit_code", "logging"],
    &["os", "platform", "lifecycle"],
    &["api", "supervisor"],
    &["agones"],
    &["wiring"],
    &["config"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every file of `src/` with the top-level module it belongs to (`src/api/state.rs` → `api`).
fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path
                    .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
                    .unwrap();
                let top = relative
                    .components()
                    .next()
                    .unwrap()
                    .as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_owned();
                files.push((top, fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files
}

/// The modules a text names as `crate::<module>`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .filter(|(at, _)| {
            // `edgegap_agent::` or `my_crate::` are not `crate::`.
            let before = text[..*at].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn every_module_of_the_agent_uses_only_lower_layers() {
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for (module, text) in sources() {
        if matches!(module.as_str(), "main" | "lib") {
            continue; // the wiring at the very top
        }
        seen.insert(module.clone());
        let Some(own) = layer_of(&module) else {
            violations.push(format!(
                "src/{module} is in no layer: add it to LAYERS and the README"
            ));
            continue;
        };
        for used in crate_paths(&text) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer < own => {}
                Some(_) => violations.push(format!("{module} uses {used}, which is not below it")),
                None => violations.push(format!("{module} uses {used}, which is in no layer")),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    let listed: BTreeSet<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter())
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        listed, seen,
        "LAYERS lists a module that src/ no longer has, or misses one"
    );
}

#[test]
fn the_checker_sees_a_path_that_points_up() {
    let uses = crate_paths(
        "use crate::api::State;\nfn f() { crate::units::x(); edgegap_agent::config::y() }",
    );
    assert_eq!(uses, BTreeSet::from(["api".to_owned(), "units".to_owned()]));
}
