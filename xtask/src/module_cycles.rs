//! `cargo xtask module-cycles`: no import cycle among the SDK's source files.
//!
//! Each file of `src/` is a module; a `crate::a::b` or `super::…` path in its code (comments and
//! `#[cfg(test)] mod tests` blocks left out) is an edge to the longest module that path names.
//! The generated client (`mod generated`, whose code is the committed snapshot
//! `openapi/generated.rs`) is one more module. Every strongly connected component of more than
//! one module is a cycle, unless it is one of the pairs allowed on purpose: the client and its
//! builder (as reqwest's `Client` and `ClientBuilder`), and the hook and the generated code
//! (progenitor's generated client names the hook's inner type, and the hook implements the
//! generated client's hook trait).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

/// The cycles allowed on purpose, each as its sorted set of modules.
const ALLOWED: &[&[&str]] = &[&["client", "config"], &["generated", "transport"]];

/// Runs the check on the crate at `root`: the lines to print and the exit code (0: no cycle
/// beyond the allowed pairs, 1: cycles, 2: the sources could not be read).
pub fn run(root: &Path) -> (Vec<String>, u8) {
    let mut sources = match read_sources(&root.join("src")) {
        Ok(sources) => sources,
        Err(e) => return (vec![format!("cannot read {}: {e}", root.display())], 2),
    };
    if let Ok(generated) = std::fs::read_to_string(root.join("openapi/generated.rs")) {
        sources.insert("generated".to_owned(), generated);
    }
    let graph = graph(&sources);
    let cycles = cycles(&graph);
    let allowed: BTreeSet<Vec<String>> = ALLOWED
        .iter()
        .map(|pair| pair.iter().map(|m| (*m).to_owned()).collect())
        .collect();
    let mut lines = Vec::new();
    let mut bad = 0;
    for cycle in &cycles {
        let names = cycle.join(" ↔ ");
        if allowed.contains(cycle) {
            lines.push(format!("allowed: {names}"));
        } else {
            bad += 1;
            lines.push(format!("cycle: {names}"));
            for from in cycle {
                for to in graph[from].intersection(&cycle.iter().cloned().collect()) {
                    lines.push(format!("  {from} -> {to}"));
                }
            }
        }
    }
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    lines.push(format!(
        "{} modules, {edges} edges, {bad} cycle(s) beyond the allowed pairs",
        graph.len()
    ));
    (lines, u8::from(bad > 0))
}

/// Module path (`flow::limiter`) -> source, for every `.rs` file under `src`.
fn read_sources(src: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap_or(&path);
                out.insert(module_of(relative), std::fs::read_to_string(&path)?);
            }
        }
    }
    Ok(out)
}

/// `flow/limiter.rs` -> `flow::limiter`, `flow/mod.rs` -> `flow`, `lib.rs` -> `crate`;
/// `private.rs` is mounted as `__private` but keeps its file's name here.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    match parts.as_slice() {
        [only] if only == "lib" => "crate".to_owned(),
        _ => parts.join("::"),
    }
}

/// The module each module's code points to (itself and the crate root left out).
fn graph(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let path = Regex::new(r"\b(crate|super)((?:::\s*[A-Za-z_][A-Za-z0-9_]*)*)").unwrap();
    let group = Regex::new(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^}]*)\}").unwrap();
    let modules: BTreeSet<&str> = sources.keys().map(String::as_str).collect();
    let mut graph = BTreeMap::new();
    for (module, source) in sources {
        let code = code_of(source);
        let mut targets = BTreeSet::new();
        let mut resolve = |anchor: &str, rest: &str| {
            let base = match anchor {
                "crate" => String::new(),
                _ => parent(module),
            };
            let mut segments: Vec<&str> = if base.is_empty() {
                Vec::new()
            } else {
                base.split("::").collect()
            };
            let mut found = None;
            for segment in rest.split("::").map(str::trim).filter(|s| !s.is_empty()) {
                if segment == "super" {
                    segments.pop();
                    continue;
                }
                segments.push(segment);
                let candidate = segments.join("::");
                if modules.contains(candidate.as_str()) {
                    found = Some(candidate);
                }
            }
            // A path to an item of the root (or of `super` itself) names the base module.
            let target = found.unwrap_or(base);
            if !target.is_empty() && target != *module {
                targets.insert(target);
            }
        };
        for c in group.captures_iter(&code) {
            for item in c[3].split(',') {
                let item = item.split_whitespace().next().unwrap_or("");
                resolve(&c[1], &format!("{}::{item}", &c[2]));
            }
        }
        for c in path.captures_iter(&code) {
            resolve(&c[1], &c[2]);
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned())
}

/// The source without comments and without `#[cfg(test)] mod … { … }` blocks: what the
/// library itself is made of.
fn code_of(source: &str) -> String {
    let mut out = String::new();
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.contains('{'))
        {
            // Skip to the line that closes the block, counting braces.
            let mut depth = 0i32;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                if depth <= 0 && l.contains('}') {
                    break;
                }
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" // ").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The strongly connected components of more than one module (Tarjan's algorithm), each
/// sorted, in a stable order.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.graph.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(m, s)| ((*m).to_owned(), (*s).to_owned()))
            .collect()
    }

    #[test]
    fn finds_a_three_file_cycle_and_ignores_comments_and_tests() {
        let s = sources(&[
            ("crate", "mod a; mod b; mod c; pub use a::A;"),
            ("a", "use crate::b::B;\n// use crate::c::C;"),
            ("b", "fn f() -> crate::c::C { make() }"),
            ("c", "use crate::{a::A, sid};\n"),
            (
                "sid",
                "#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
            ),
        ]);
        let g = graph(&s);
        assert_eq!(g["a"], BTreeSet::from(["b".to_owned()]));
        assert!(g["sid"].is_empty(), "{:?}", g["sid"]);
        assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn resolves_super_and_nested_modules() {
        let s = sources(&[
            ("flow", "pub(crate) mod limiter;"),
            (
                "flow::limiter",
                "use super::FlowStats; use crate::retry::budget::X;",
            ),
            ("retry", "pub(crate) mod budget;"),
            ("retry::budget", "use crate::flow::limiter::L;"),
        ]);
        let g = graph(&s);
        assert_eq!(
            g["flow::limiter"],
            BTreeSet::from(["flow".to_owned(), "retry::budget".to_owned()])
        );
        assert_eq!(cycles(&g), vec![vec!["flow::limiter", "retry::budget"]]);
    }

    #[test]
    fn the_crate_has_no_cycle_beyond_the_allowed_pairs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let (lines, code) = run(&root);
        assert_eq!(code, 0, "{}", lines.join("\n"));
    }
}
