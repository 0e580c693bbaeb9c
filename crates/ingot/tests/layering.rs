//! The crate's layers (docs/architecture.md), checked on the sources: every module may use only
//! the modules listed for it below. A new `use crate::…` (or `crate::…` path, or `super::`
//! reaching another top-level module) that crosses a layer fails this test, naming the file and
//! line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it may use. Lowest layers first.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves: no other module of the crate, or only other leaves.
    ("error", &[]),
    ("value", &[]),
    ("version", &[]),
    ("storage", &[]),
    ("parallel", &[]),
    ("atomic_file", &["error"]),
    ("arena", &["storage"]),
    ("input", &["error", "value"]),
    ("output", &["value"]),
    // The file format: bytes, manifests, tensors, the packed16 layout.
    ("format", &["error", "value", "storage", "atomic_file"]),
    // Tree ensembles as sources describe them, and as the format stores them.
    ("trees", &["error", "value", "format"]),
    // The validated IR, and the kernels beside it: neither knows the other.
    ("graph", &["error", "format", "trees"]),
    ("kernels", &["error", "storage", "parallel", "format", "trees"]),
    // Pre- and post-processing: pure functions of the request and of the scores.
    ("preprocess", &["error", "value", "input", "format", "parallel"]),
    ("postprocess", &["error", "value", "output", "format", "kernels", "parallel"]),
    // Lowering and running a graph.
    ("exec", &["error", "graph", "kernels", "format", "storage", "arena", "parallel", "trees"]),
    // The shells' shared I/O: CSV rules and Arrow batches, over inputs and predictions.
    ("io", &["error", "value", "format", "input", "output"]),
    // Importers build manifests and tensors (inferring shapes by the graph's rules); they
    // never run a model.
    ("import", &["error", "value", "version", "format", "trees", "graph"]),
    // The top: the model, and what writes validated bundles.
    (
        "model",
        &[
            "error",
            "value",
            "version",
            "input",
            "output",
            "format",
            "graph",
            "exec",
            "arena",
            "preprocess",
            "postprocess",
            "kernels",
            "parallel",
        ],
    ),
    ("save", &["error", "format", "model"]),
    // Reduced-precision copies of a model, measured against it; one layer on its own.
    ("quantize", &["error", "value", "version", "input", "output", "format", "kernels", "model"]),
    ("layer", &["error", "kernels", "parallel", "quantize"]),
    // Signatures over whole files: sign only what passes the container checks.
    ("signing", &["error", "atomic_file", "format"]),
    // Test and doc helpers, and the crate root, may use anything.
    ("testing", &["*"]),
    ("lib", &["*"]),
];

fn allowed(module: &str) -> &'static [&'static str] {
    ALLOWED.iter().find(|(m, _)| *m == module).map_or(&[], |(_, a)| a)
}

fn is_module(name: &str) -> bool {
    ALLOWED.iter().any(|(m, _)| *m == name)
}

/// Removes `//` and `/* */` comments (doc comments too), string and char literals, keeping
/// the line structure.
fn code_only(source: &str) -> String {
    let s: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let mut depth = 0usize;
    while i < s.len() {
        let (c, next) = (s[i], s.get(i + 1).copied());
        if c == '\n' {
            out.push('\n');
            i += 1;
        } else if depth > 0 {
            match (c, next) {
                ('/', Some('*')) => (depth, i) = (depth + 1, i + 2),
                ('*', Some('/')) => (depth, i) = (depth - 1, i + 2),
                _ => i += 1,
            }
        } else if c == '/' && next == Some('*') {
            (depth, i) = (1, i + 2);
        } else if c == '/' && next == Some('/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < s.len() && s[i] != '"' {
                if s[i] == '\\' {
                    i += 1;
                } else if s[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && (next == Some('\\') || s.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\''); a lifetime has no closing quote.
            i += 2;
            while i < s.len() && s[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The top-level modules named by `crate::…` paths (grouped `crate::{a, b::c}` included, over
/// several lines too) and by `super::name` where `name` is a top-level module other than `own`,
/// with their line numbers.
fn references(source: &str, own: &str) -> Vec<(usize, String)> {
    let code = code_only(source);
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let after = &code[at + "crate::".len()..];
        match after.strip_prefix('{') {
            Some(group) => {
                let mut offset = at + "crate::{".len();
                for item in group.split('}').next().unwrap_or("").split(',') {
                    let lead = item.len() - item.trim_start().len();
                    found.push((line_of(offset + lead), ident(item.trim_start())));
                    offset += item.len() + 1;
                }
            }
            None => found.push((line_of(at), ident(after))),
        }
    }
    for (at, _) in code.match_indices("super::") {
        let name = ident(&code[at + "super::".len()..]);
        if is_module(&name) && name != own {
            found.push((line_of(at), name));
        }
    }
    // `crate::Name` (a re-export at the root, e.g. `crate::Model`) names no module.
    found.retain(|(_, name)| name.chars().next().is_some_and(|c| c.is_lowercase()));
    found.sort();
    found
}

/// Violations of [`ALLOWED`] in one file of module `module`.
fn violations(module: &str, source: &str) -> Vec<String> {
    let allowed = allowed(module);
    if allowed == ["*"] {
        return Vec::new();
    }
    references(source, module)
        .into_iter()
        // `testing` holds the tiny bundles of doc examples and unit tests: any module's tests may use it.
        .filter(|(_, used)| used != module && used != "testing" && !allowed.contains(&used.as_str()))
        .map(|(line, used)| format!("line {line}: {module} → {used}"))
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_str().unwrap();
        let module = top.strip_suffix(".rs").unwrap_or(top);
        assert!(is_module(module), "module `{module}` ({}) has no entry in ALLOWED", rel.display());
        seen.insert(module.to_string());
        let source = std::fs::read_to_string(file).unwrap();
        problems.extend(violations(module, &source).into_iter().map(|v| format!("{}: {v}", rel.display())));
    }
    assert!(
        problems.is_empty(),
        "forbidden imports (see docs/architecture.md):\n  {}",
        problems.join("\n  ")
    );
    let listed: BTreeSet<String> = ALLOWED.iter().map(|(m, _)| m.to_string()).collect();
    assert_eq!(seen, listed, "ALLOWED lists a module that does not exist, or misses one");
}

#[test]
fn the_checker_sees_forbidden_imports() {
    assert_eq!(violations("format", "use crate::graph::Graph;\n"), ["line 1: format → graph"]);
    assert_eq!(
        violations("kernels", "use crate::{error::Error,\n model::Model};\nfn f() { crate::exec::run(); }"),
        ["line 2: kernels → model", "line 3: kernels → exec"]
    );
    assert_eq!(
        violations("preprocess", "use super::super::kernels::gemm;"),
        ["line 1: preprocess → kernels"]
    );
    // Comments, doc links and strings are not imports; a module may use itself and its allowed ones.
    assert!(violations("format", "/// See [`crate::Model`] and crate::graph.\n// crate::exec\n").is_empty());
    assert!(violations("format", "let s = \"crate::model\"; use crate::error::Result;").is_empty());
    assert!(violations("exec", "use crate::kernels::gemm; use super::cpu;").is_empty());
}
