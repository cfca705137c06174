//! Reading `fwup.conf`: the meta.conf grammar plus what `fwup -c` does
//! while it parses (fwup's libconfuse callbacks in `cfgfile.c`).
//!
//! * `define(NAME, VALUE)` sets a variable unless it is already set (the
//!   environment wins), `define!` always sets it, `define-eval`/
//!   `define-eval!` first evaluate an integer expression ([`super::expr`]).
//! * `${NAME}` expands at pack time from those variables and the
//!   environment; `\${NAME}` stays `${NAME}` for apply time, and
//!   `${FWUP_META_UUID}` always stays as it is (fwup sets it to itself).
//! * `include("path")` splices another file in where the call is.
//! * Actions in handlers and `require-*` guards in tasks are checked and
//!   stored as `funlist`/`reqlist`, as meta.conf holds them.
//! * Options are checked against fwup's tables ([`super::schema`]) and
//!   typed values normalized (`type = 0xc` becomes `12`).
//! * When a top-level section closes, what fwup validates then is checked
//!   (see [`super::sections`]); `FWUP_SIZE_<resource>` is defined after each
//!   `file-resource` with a host path.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use super::calls::{check_action, check_requirement, Declared};
use super::expr;
use super::schema::{parse_bool, parse_int, Calls, Opt, Schema, ROOT};
use super::sections::{close_top_level, ResourceSpec};
use super::{resolve_path, PackError};
use crate::bundle::conf::{Section, Value};
use crate::bundle::fwup_version::check_fwup_version;
use crate::bundle::parse::parser::{parse_with_hooks, At, Hooks, Source};
use crate::bundle::parse::{append_call, ParseErrorKind};

/// `fwup.conf` after reading: the tree to print as `meta.conf` (hashes and
/// lengths still missing) and the resources to pack, in declaration order.
#[derive(Debug)]
pub(crate) struct Config {
    pub root: Section,
    pub resources: Vec<ResourceSpec>,
}

/// Reads the configuration at `path`. `vars` are the variables `${…}` can
/// use before any `define` (normally the process environment).
pub(crate) fn read_config(path: &Path, vars: BTreeMap<String, String>) -> Result<Config, PackError> {
    let text = std::fs::read_to_string(path).map_err(|source| PackError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut vars = vars;
    // fwup: the UUID is only known when the bundle is applied, so an
    // unescaped `${FWUP_META_UUID}` is kept for then.
    vars.insert("FWUP_META_UUID".into(), "${FWUP_META_UUID}".into());
    let vars = RefCell::new(vars);
    let env = |name: &str| vars.borrow().get(name).cloned();
    let mut hooks = PackHooks {
        vars: &vars,
        schemas: vec![&ROOT],
        declared: Declared::default(),
        resources: Vec::new(),
    };
    let source = Source {
        name: path.display().to_string(),
        text,
    };
    let root = parse_with_hooks(source, &env, &mut hooks).map_err(|e| PackError::Config {
        file: e.source,
        line: e.error.line,
        message: e.error.kind.to_string(),
    })?;
    Ok(Config {
        root,
        resources: hooks.resources,
    })
}

struct PackHooks<'v> {
    vars: &'v RefCell<BTreeMap<String, String>>,
    /// The tables of the open sections; the root's first.
    schemas: Vec<&'static Schema>,
    declared: Declared,
    resources: Vec<ResourceSpec>,
}

fn rejected(message: impl Into<String>) -> ParseErrorKind {
    ParseErrorKind::Rejected(message.into())
}

/// How messages name a section.
fn describe(section: &Section) -> String {
    if section.kind.is_empty() {
        "the top level".into()
    } else {
        section.to_string()
    }
}

impl PackHooks<'_> {
    fn schema(&self) -> &'static Schema {
        self.schemas.last().copied().unwrap_or(&ROOT)
    }

    fn define(&mut self, name: &str, args: Vec<String>) -> Result<(), ParseErrorKind> {
        let [key, value] = <[String; 2]>::try_from(args)
            .map_err(|a| rejected(format!("`{name}` takes 2 parameters (NAME, VALUE), got {}", a.len())))?;
        if key.is_empty() {
            return Err(rejected(format!("`{name}`: the variable name is empty")));
        }
        let value = if name.starts_with("define-eval") {
            expr::eval(&value)
                .map_err(|e| rejected(format!("{name}({key}, \"{value}\"): {e}")))?
                .to_string()
        } else {
            value
        };
        let overwrite = name.ends_with('!');
        let mut vars = self.vars.borrow_mut();
        if overwrite || !vars.contains_key(&key) {
            vars.insert(key, value);
        }
        Ok(())
    }

    fn include(&self, at: At<'_>, args: Vec<String>) -> Result<Option<Source>, ParseErrorKind> {
        let [path] = <[String; 1]>::try_from(args)
            .map_err(|a| rejected(format!("`include` takes 1 parameter (a path), got {}", a.len())))?;
        if path.is_empty() {
            return Err(rejected("include(): the path is empty (an undefined variable?)"));
        }
        let resolved = resolve_path(at.source, &path).map_err(|e| rejected(format!("include(\"{path}\"): {e}")))?;
        if !resolved.is_file() {
            return Err(rejected(format!(
                "include(\"{path}\"): {} is not a regular file",
                resolved.display()
            )));
        }
        let text = std::fs::read_to_string(&resolved)
            .map_err(|e| rejected(format!("include(\"{path}\"): reading {}: {e}", resolved.display())))?;
        Ok(Some(Source {
            name: resolved.display().to_string(),
            text,
        }))
    }

    /// A typed option's value as fwup would store and print it.
    fn normalize(&self, section: &Section, key: &str, opt: Opt, value: Value) -> Result<Value, ParseErrorKind> {
        let whose = || format!("`{key}` in {}", describe(section));
        let int = |text: &str| {
            parse_int(text)
                .map(|n| n.to_string())
                .ok_or_else(|| rejected(format!("{}: `{text}` is not an integer", whose())))
        };
        match (opt, value) {
            (Opt::IntList, Value::Scalar(s)) => Ok(Value::List(vec![int(&s)?])),
            (Opt::IntList, Value::List(items)) => {
                Ok(Value::List(items.iter().map(|s| int(s)).collect::<Result<_, _>>()?))
            }
            (Opt::StrList, Value::Scalar(s)) => Ok(Value::List(vec![s])),
            (Opt::StrList, list) => Ok(list),
            (_, Value::List(_)) => Err(rejected(format!("{} takes a single value, not a list", whose()))),
            (Opt::Int(_), Value::Scalar(s)) => Ok(Value::Scalar(int(&s)?)),
            (Opt::Bool(_), Value::Scalar(s)) => match parse_bool(&s) {
                Some(b) => Ok(Value::Scalar(b.to_string())),
                None => Err(rejected(format!("{}: `{s}` is not true or false", whose()))),
            },
            (Opt::Str | Opt::PackOnly, scalar) => Ok(scalar),
        }
    }
}

impl Hooks for PackHooks<'_> {
    fn call(
        &mut self,
        at: At<'_>,
        section: &mut Section,
        name: String,
        args: Vec<String>,
    ) -> Result<Option<Source>, ParseErrorKind> {
        let calls = self.schema().calls;
        match (calls, name.as_str()) {
            (Calls::None, _) => {}
            (_, "include") => return self.include(at, args),
            (Calls::Root, "define" | "define!" | "define-eval" | "define-eval!") => {
                self.define(&name, args)?;
                return Ok(None);
            }
            (Calls::Requirements, n) if n.starts_with("require-") => {
                check_requirement(&self.declared, &name, &args).map_err(rejected)?;
                append_call(section, "reqlist", name, args);
                return Ok(None);
            }
            (Calls::Actions, _) => {
                let resource = section.title.clone();
                check_action(&self.declared, &section.kind, resource.as_deref(), &name, &args).map_err(rejected)?;
                let mut args = args;
                if let (Some(resource), "fat_write", 1) = (resource, name.as_str(), args.len()) {
                    // fwup stores the default destination: the resource name.
                    args.push(resource);
                }
                append_call(section, "funlist", name, args);
                return Ok(None);
            }
            _ => {}
        }
        let hint = match calls {
            Calls::Root => "; the top level knows define, define!, define-eval, define-eval! and include",
            Calls::Requirements => "; actions go inside on-init, on-finish, on-error or on-resource",
            _ => "",
        };
        Err(rejected(format!(
            "`{name}(…)` is not allowed in {}{hint}",
            describe(section)
        )))
    }

    fn option(
        &mut self,
        _at: At<'_>,
        _path: &[String],
        section: &Section,
        key: &str,
        value: Value,
    ) -> Result<Value, ParseErrorKind> {
        let Some(opt) = self.schema().option(key) else {
            if key == "meta-uuid" || key == "meta-nickname" {
                return Err(rejected(format!(
                    "`{key}` is computed from meta.conf when the bundle is applied and cannot be set"
                )));
            }
            return Err(rejected(format!("unknown option `{key}` in {}", describe(section))));
        };
        let value = self.normalize(section, key, opt, value)?;
        if let ("require-fwup-version", Value::Scalar(version)) = (key, &value) {
            check_fwup_version(version).map_err(|e| rejected(e.to_string()))?;
        }
        Ok(value)
    }

    fn open_section(
        &mut self,
        _at: At<'_>,
        parent: &Section,
        kind: &str,
        title: Option<&str>,
    ) -> Result<(), ParseErrorKind> {
        let Some((titled, schema)) = self.schema().section(kind) else {
            return Err(rejected(format!("unknown section `{kind}` in {}", describe(parent))));
        };
        match (titled, title) {
            (true, None) => return Err(rejected(format!("`{kind}` needs a name: {kind} NAME {{ … }}"))),
            (false, Some(title)) => {
                return Err(rejected(format!("`{kind}` takes no name, found \"{title}\"")));
            }
            (true, Some(resource))
                if kind == "on-resource" && !self.declared.resources.iter().any(|r| r == resource) =>
            {
                return Err(rejected(format!(
                    "on-resource \"{resource}\": no file-resource \"{resource}\" is declared before this task"
                )));
            }
            _ => {}
        }
        self.schemas.push(schema);
        Ok(())
    }

    fn close_section(&mut self, at: At<'_>, parent: &Section, section: &mut Section) -> Result<(), ParseErrorKind> {
        self.schemas.pop();
        if !parent.kind.is_empty() {
            return Ok(());
        }
        let resource = close_top_level(at, section).map_err(rejected)?;
        if let Some(resource) = resource {
            if let Some((key, size)) = resource.size_variable() {
                self.vars.borrow_mut().insert(key, size);
            }
            self.resources.push(resource);
        }
        if let Some(title) = &section.title {
            self.declared.add(&section.kind, title);
        }
        Ok(())
    }
}
