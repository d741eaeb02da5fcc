//! `cargo xtask spec diff <upstream.json>`: compares each operation of our fragment with the
//! operation of the same operationId (or, failing that, the same method and path) in Twilio's
//! published description, and lists upstream operations on our paths that we do not cover.
//!
//! Compared: method and path; parameters (required, type, format, enum, default, pattern,
//! lengths); request media types and form fields (the same facets, and required); response
//! status codes, media types and properties (type, format, enum, default, required).
//! Ignored, because the fragment changes them on purpose: our 4XX/5XX error responses,
//! schema names (`$ref`s and `allOf`s are resolved on both sides, which also makes our
//! `allOf: [$ref: Rfc2822DateTime]` the same as upstream's `format: date-time-rfc-2822`),
//! descriptions, titles, examples, `nullable`, and `pattern`/`minLength`/`maxLength` on
//! response properties; an `enum` on a response property that ours keeps as a plain string
//! (decoding stays lenient: a status Twilio adds must not make a resource unreadable).
//!
//! What the fragment leaves out on purpose it says, so that anything else upstream adds is
//! still reported: an operation's `x-not-sent` lists the optional upstream parameters the SDK
//! never sends, and a response schema's `x-not-read` the upstream properties it never reads.
//! A name in either list that upstream does not have is reported too (a stale list).
//!
//! Several upstream excerpts can be given: their paths and schemas are read as one
//! description (each excerpt is a part of the same upstream file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

use crate::oas::{self, Operation, show};

const FORM: &str = "application/x-www-form-urlencoded";

/// Runs the diff of the fragment at `fragment` against the upstream JSON description at
/// `upstream`. Returns the lines to print and the exit code: 0 in sync, 1 drift (one line per
/// difference, then a count), 2 unreadable input (one line saying why).
pub fn run(fragment: &Path, upstream: &Path) -> (Vec<String>, u8) {
    run_many(fragment, &[upstream])
}

/// [`run`] against several excerpts of one upstream description, read as one.
pub fn run_many(fragment: &Path, upstream: &[&Path]) -> (Vec<String>, u8) {
    let compared = oas::read(fragment)
        .and_then(|text| oas::parse_yaml(&text, fragment))
        .and_then(|ours| {
            let mut up = Value::Null;
            for path in upstream {
                let part = oas::read(path).and_then(|text| oas::parse_json(&text, path))?;
                merge(&mut up, part);
            }
            let names: Vec<String> = upstream.iter().map(|p| p.display().to_string()).collect();
            diff(
                &ours,
                &fragment.display().to_string(),
                &up,
                &names.join(" + "),
            )
            .map(|lines| (lines, oas::operations(&ours).map_or(0, |ops| ops.len())))
        });
    match compared {
        Err(e) => (vec![e], 2),
        Ok((lines, operations)) if lines.is_empty() => (
            vec![format!(
                "in sync: all {operations} operations of the fragment match upstream"
            )],
            0,
        ),
        Ok((mut lines, _)) => {
            let n = lines.len();
            let s = if n == 1 { "" } else { "s" };
            lines.push(format!(
                "drift: {n} difference{s} between the fragment and upstream"
            ));
            (lines, 1)
        }
    }
}

/// The differences between two parsed documents, one line each (empty when in sync).
/// The names are used in error messages (an unresolvable `$ref`, no `paths`).
pub fn diff(
    ours: &Value,
    our_name: &str,
    upstream: &Value,
    up_name: &str,
) -> Result<Vec<String>, String> {
    let our_ops = oas::operations(ours).map_err(|e| format!("{our_name}: {e}"))?;
    let up_ops = oas::operations(upstream).map_err(|e| format!("{up_name}: {e}"))?;
    let mut d = Differ {
        ours,
        our_name,
        up: upstream,
        up_name,
        lines: Vec::new(),
    };
    for o in &our_ops {
        let label = o.label();
        let by_id = o
            .id()
            .and_then(|id| up_ops.iter().find(|u| u.id() == Some(id)));
        let by_route = up_ops
            .iter()
            .find(|u| u.path == o.path && u.method == o.method);
        let u = match (by_id, by_route) {
            (Some(u), _) => u,
            (None, Some(u)) => {
                d.pair(
                    &label,
                    "operationId",
                    u.id().unwrap_or("none"),
                    o.id().unwrap_or("none"),
                );
                u
            }
            (None, None) => {
                d.lines.push(format!(
                    "{label}: not found upstream (no operation with this operationId, nothing at {})",
                    o.route()
                ));
                continue;
            }
        };
        if u.method != o.method {
            d.pair(
                &label,
                "method",
                &u.method.to_uppercase(),
                &o.method.to_uppercase(),
            );
        }
        if u.path != o.path {
            d.pair(&label, "path", u.path, o.path);
        }
        d.parameters(&label, u, o)?;
        d.request_body(&label, u, o)?;
        d.responses(&label, u, o)?;
    }
    let our_paths: BTreeSet<&str> = our_ops.iter().map(|o| o.path).collect();
    for u in up_ops.iter().filter(|u| our_paths.contains(u.path)) {
        let covered = our_ops.iter().any(|o| {
            (o.id().is_some() && o.id() == u.id()) || (o.path == u.path && o.method == u.method)
        });
        if !covered {
            d.lines.push(format!(
                "{}: upstream operation {} is not in the fragment",
                u.route(),
                u.label()
            ));
        }
    }
    Ok(d.lines)
}

/// Adds an excerpt's paths and components to `into` (the first excerpt is taken whole).
fn merge(into: &mut Value, part: Value) {
    let Value::Object(into_map) = into else {
        *into = part;
        return;
    };
    let Value::Object(part) = part else { return };
    for (key, value) in part {
        match (into_map.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(more)) if key == "paths" => {
                existing.extend(more);
            }
            (Some(Value::Object(existing)), Value::Object(more)) if key == "components" => {
                for (kind, entries) in more {
                    match (existing.get_mut(&kind), entries) {
                        (Some(Value::Object(have)), Value::Object(entries)) => have.extend(entries),
                        (None, entries) => {
                            existing.insert(kind, entries);
                        }
                        _ => {}
                    }
                }
            }
            (None, value) => {
                into_map.insert(key, value);
            }
            _ => {}
        }
    }
}

/// The names an `x-not-sent` / `x-not-read` extension lists.
fn omitted(value: Option<&Value>) -> BTreeSet<&str> {
    value
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Request,
    Response,
}

impl Mode {
    /// The schema keywords compared at every level.
    fn facets(self) -> &'static [&'static str] {
        match self {
            Mode::Request => &[
                "type",
                "format",
                "enum",
                "default",
                "pattern",
                "minLength",
                "maxLength",
            ],
            // Our response properties drop pattern and lengths on purpose (lenient decoding).
            Mode::Response => &["type", "format", "enum", "default"],
        }
    }
}

struct Differ<'a> {
    ours: &'a Value,
    our_name: &'a str,
    up: &'a Value,
    up_name: &'a str,
    lines: Vec<String>,
}

impl<'a> Differ<'a> {
    fn pair(&mut self, at: &str, what: &str, upstream: &str, ours: &str) {
        self.lines
            .push(format!("{at}: {what}: upstream {upstream}, ours {ours}"));
    }

    fn resolve_up(&self, value: &'a Value) -> Result<&'a Value, String> {
        oas::resolve(self.up, value).map_err(|e| format!("{}: {e}", self.up_name))
    }

    fn resolve_ours(&self, value: &'a Value) -> Result<&'a Value, String> {
        oas::resolve(self.ours, value).map_err(|e| format!("{}: {e}", self.our_name))
    }

    fn flatten(
        &self,
        upstream: bool,
        schema: Option<&Value>,
    ) -> Result<Map<String, Value>, String> {
        let (doc, name) = if upstream {
            (self.up, self.up_name)
        } else {
            (self.ours, self.our_name)
        };
        schema.map_or(Ok(Map::new()), |s| {
            oas::flatten(doc, s).map_err(|e| format!("{name}: {e}"))
        })
    }

    fn parameters(
        &mut self,
        label: &str,
        u: &Operation<'a>,
        o: &Operation<'a>,
    ) -> Result<(), String> {
        let ups = parameters(u, |p| self.resolve_up(p))?;
        let ours = parameters(o, |p| self.resolve_ours(p))?;
        let not_sent = omitted(o.op.get("x-not-sent"));
        for name in &not_sent {
            let optional_upstream = ups
                .iter()
                .any(|((_, n), p)| n == name && p.get("required") != Some(&Value::Bool(true)));
            if !optional_upstream {
                self.lines.push(format!(
                    "{label}: x-not-sent names {name}, which is not an optional upstream parameter"
                ));
            }
        }
        let keys: BTreeSet<&(String, String)> = ups.keys().chain(ours.keys()).collect();
        for key @ (location, name) in keys {
            let at = format!("{label}: {location} parameter {name}");
            let required = |p: &Value| p.get("required") == Some(&Value::Bool(true));
            match (ups.get(key), ours.get(key)) {
                (Some(up), Some(our)) => {
                    if required(up) != required(our) {
                        self.pair(&at, "required", yes_no(required(up)), yes_no(required(our)));
                    }
                    self.schema(&at, up.get("schema"), our.get("schema"), Mode::Request)?;
                }
                (Some(_), None) if not_sent.contains(name.as_str()) => {}
                (Some(up), None) => {
                    let desc = self.describe(true, up.get("schema"), required(up))?;
                    self.lines
                        .push(format!("{at}: upstream {desc}, ours absent"));
                }
                (None, Some(our)) => {
                    let desc = self.describe(false, our.get("schema"), required(our))?;
                    self.lines
                        .push(format!("{at}: upstream absent, ours {desc}"));
                }
                (None, None) => {}
            }
        }
        Ok(())
    }

    fn request_body(
        &mut self,
        label: &str,
        u: &Operation<'a>,
        o: &Operation<'a>,
    ) -> Result<(), String> {
        let up =
            u.op.get("requestBody")
                .map(|b| self.resolve_up(b))
                .transpose()?;
        let our =
            o.op.get("requestBody")
                .map(|b| self.resolve_ours(b))
                .transpose()?;
        self.content(label, "request body", up, our, Mode::Request)
    }

    fn responses(
        &mut self,
        label: &str,
        u: &Operation<'a>,
        o: &Operation<'a>,
    ) -> Result<(), String> {
        let empty = Map::new();
        let up =
            u.op.get("responses")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
        let our =
            o.op.get("responses")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
        // Our error responses are deliberate; an upstream error status counts as covered
        // when we declare it or its range.
        let is_error = |code: &str| code.starts_with('4') || code.starts_with('5');
        let our_codes: BTreeSet<&str> = our
            .keys()
            .map(String::as_str)
            .filter(|c| !is_error(c))
            .collect();
        let up_codes: BTreeSet<&str> = up
            .keys()
            .map(String::as_str)
            .filter(|c| {
                !(is_error(c)
                    && (our.contains_key(*c) || our.contains_key(&format!("{}XX", &c[..1]))))
            })
            .collect();
        if up_codes != our_codes {
            self.pair(
                label,
                "response status codes",
                &list(&up_codes),
                &list(&our_codes),
            );
        }
        for code in up_codes.intersection(&our_codes) {
            let up_response = self.resolve_up(&up[*code])?;
            let our_response = self.resolve_ours(&our[*code])?;
            self.content(
                label,
                &format!("response {code}"),
                Some(up_response),
                Some(our_response),
                Mode::Response,
            )?;
        }
        Ok(())
    }

    /// Compares the `content` of a request body or a response: media types, then the schema
    /// of each media type both sides declare.
    fn content(
        &mut self,
        label: &str,
        what: &str,
        up: Option<&Value>,
        our: Option<&Value>,
        mode: Mode,
    ) -> Result<(), String> {
        let media = |v: Option<&Value>| -> BTreeMap<String, Value> {
            v.and_then(|v| v.get("content"))
                .and_then(Value::as_object)
                .map_or_else(BTreeMap::new, |m| {
                    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                })
        };
        let (up, our) = (media(up), media(our));
        let up_types: BTreeSet<&str> = up.keys().map(String::as_str).collect();
        let our_types: BTreeSet<&str> = our.keys().map(String::as_str).collect();
        if up_types != our_types {
            self.pair(
                label,
                &format!("{what} media types"),
                &list(&up_types),
                &list(&our_types),
            );
        }
        for media_type in up_types.intersection(&our_types) {
            let children = match (mode, *media_type) {
                (Mode::Request, FORM) => format!("{label}: form field "),
                (Mode::Request, _) => format!("{label}: request body property "),
                (Mode::Response, _) => format!("{label}: {what} property "),
            };
            let (u, o) = (
                up[*media_type].get("schema"),
                our[*media_type].get("schema"),
            );
            self.schema_with_children(&format!("{label}: {what}"), &children, u, o, mode)?;
        }
        Ok(())
    }

    fn schema(
        &mut self,
        at: &str,
        up: Option<&Value>,
        our: Option<&Value>,
        mode: Mode,
    ) -> Result<(), String> {
        self.schema_with_children(at, &format!("{at}."), up, our, mode)
    }

    /// Compares two schemas at `at`; their properties are named `{children}{name}`.
    fn schema_with_children(
        &mut self,
        at: &str,
        children: &str,
        up: Option<&Value>,
        our: Option<&Value>,
        mode: Mode,
    ) -> Result<(), String> {
        let u = self.flatten(true, up)?;
        let o = self.flatten(false, our)?;
        for facet in mode.facets() {
            let (uv, ov) = (u.get(*facet), o.get(*facet));
            if *facet == "enum" && mode == Mode::Response && ov.is_none() {
                // Read as a plain string on purpose: any value decodes.
                continue;
            }
            let same = if *facet == "enum" {
                enum_set(uv) == enum_set(ov)
            } else {
                uv == ov
            };
            if !same {
                self.pair(at, facet, &show(uv), &show(ov));
            }
        }

        let empty = Map::new();
        let props = |s: &Map<String, Value>| {
            s.get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty)
                .clone()
        };
        let (up_props, our_props) = (props(&u), props(&o));
        let (up_required, our_required) = (oas::required(&u), oas::required(&o));
        let not_read = omitted(o.get("x-not-read"));
        for name in &not_read {
            if !up_props.contains_key(*name) {
                self.lines.push(format!(
                    "{at}: x-not-read names {name}, which upstream does not have"
                ));
            }
        }
        let names: BTreeSet<&String> = up_props.keys().chain(our_props.keys()).collect();
        for name in names {
            let child = format!("{children}{name}");
            let (ur, or) = (
                up_required.contains(name.as_str()),
                our_required.contains(name.as_str()),
            );
            match (up_props.get(name), our_props.get(name)) {
                (Some(up), Some(our)) => {
                    if ur != or {
                        self.pair(&child, "required", yes_no(ur), yes_no(or));
                    }
                    self.schema(&child, Some(up), Some(our), mode)?;
                }
                (Some(_), None) if !ur && not_read.contains(name.as_str()) => {}
                (Some(up), None) => {
                    let desc = self.describe(true, Some(up), ur)?;
                    self.lines
                        .push(format!("{child}: upstream {desc}, ours absent"));
                }
                (None, Some(our)) => {
                    let desc = self.describe(false, Some(our), or)?;
                    self.lines
                        .push(format!("{child}: upstream absent, ours {desc}"));
                }
                (None, None) => {}
            }
        }

        if u.contains_key("items") || o.contains_key("items") {
            let items = format!("{at}[]");
            self.schema(&items, u.get("items"), o.get("items"), mode)?;
        }
        Ok(())
    }

    /// `optional string (format uri)`, for a field one side has and the other has not.
    fn describe(
        &self,
        upstream: bool,
        schema: Option<&Value>,
        required: bool,
    ) -> Result<String, String> {
        let s = self.flatten(upstream, schema)?;
        let mut desc = format!(
            "{} {}",
            if required { "required" } else { "optional" },
            show(s.get("type"))
        );
        let details: Vec<String> = ["format", "enum"]
            .iter()
            .filter_map(|k| s.get(*k).map(|v| format!("{k} {}", show(Some(v)))))
            .collect();
        if !details.is_empty() {
            desc.push_str(&format!(" ({})", details.join(", ")));
        }
        Ok(desc)
    }
}

/// An operation's parameters (path-level ones overridden by operation-level ones), resolved,
/// by (location, name).
fn parameters<'v>(
    op: &Operation<'v>,
    resolve: impl Fn(&'v Value) -> Result<&'v Value, String>,
) -> Result<BTreeMap<(String, String), &'v Value>, String> {
    let mut out = BTreeMap::new();
    for list in [op.path_item.get("parameters"), op.op.get("parameters")]
        .into_iter()
        .flatten()
    {
        for param in list.as_array().into_iter().flatten() {
            let param = resolve(param)?;
            let field = |k: &str| {
                param
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned()
            };
            out.insert((field("in"), field("name")), param);
        }
    }
    Ok(out)
}

fn enum_set(value: Option<&Value>) -> Option<BTreeSet<String>> {
    value.map(|v| {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| show(Some(e)))
            .collect()
    })
}

fn list(items: &BTreeSet<&str>) -> String {
    format!("[{}]", items.iter().copied().collect::<Vec<_>>().join(", "))
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
