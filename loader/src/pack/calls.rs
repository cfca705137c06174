//! Checking an action or guard call when `fwup.conf` is read, like fwup's
//! `fun_validate`/`req_validate` callbacks do, so a typo is reported with
//! its file and line instead of failing at install time.
//!
//! The checks are the engine's own: the call is put into a minimal
//! `meta.conf` tree (the tables declared so far, the resource of an
//! `on-resource` handler, one task) and read with [`Manifest::from_conf`].
//! Whatever the loader would refuse to install is refused here.

use crate::bundle::conf::{Section, Value};
use crate::bundle::manifest::Manifest;
use crate::bundle::manifest_build::ManifestError;

/// fwup's `FUN_MAX_ARGS` counts the function name.
const MAX_ARGS: usize = 9;

/// Names declared so far, which later calls may refer to.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    pub resources: Vec<String>,
    pub mbrs: Vec<String>,
    pub gpts: Vec<String>,
    pub uboot_envs: Vec<String>,
}

impl Declared {
    /// Records a top-level section once it is complete.
    pub fn add(&mut self, kind: &str, title: &str) {
        let list = match kind {
            "file-resource" => &mut self.resources,
            "mbr" => &mut self.mbrs,
            "gpt" => &mut self.gpts,
            "uboot-environment" => &mut self.uboot_envs,
            _ => return,
        };
        list.push(title.to_string());
    }

    fn tree(&self, resource: Option<&str>, task: Section) -> Section {
        let mut root = Section::default();
        for (kind, names) in [
            ("mbr", &self.mbrs),
            ("gpt", &self.gpts),
            ("uboot-environment", &self.uboot_envs),
        ] {
            for name in names {
                root.sections.push(titled(kind, name));
            }
        }
        if let Some(resource) = resource {
            let mut section = titled("file-resource", resource);
            section
                .options
                .push(("blake2b-256".into(), Value::Scalar("0".repeat(64))));
            root.sections.push(section);
        }
        root.sections.push(task);
        root
    }
}

fn titled(kind: &str, title: &str) -> Section {
    Section {
        kind: kind.to_string(),
        title: Some(title.to_string()),
        ..Section::default()
    }
}

fn call_list(name: &str, args: &[String]) -> Result<Vec<String>, String> {
    if args.len() > MAX_ARGS {
        return Err(format!(
            "`{name}` takes at most {MAX_ARGS} arguments, got {}",
            args.len()
        ));
    }
    let mut list = vec![(args.len() + 1).to_string(), name.to_string()];
    list.extend(args.iter().cloned());
    Ok(list)
}

/// Checks `name(args)` inside the handler `kind` (`on-init`, …,
/// `on-resource` with its `resource`).
pub(crate) fn check_action(
    declared: &Declared,
    kind: &str,
    resource: Option<&str>,
    name: &str,
    args: &[String],
) -> Result<(), String> {
    let mut handler = Section {
        kind: kind.to_string(),
        title: resource.map(str::to_string),
        ..Section::default()
    };
    handler
        .options
        .push(("funlist".into(), Value::List(call_list(name, args)?)));
    let mut task = titled("task", "check");
    task.sections.push(handler);
    Manifest::from_conf(&declared.tree(resource, task))
        .map(drop)
        .map_err(describe)
}

/// Checks a `require-*(args)` guard of a task.
pub(crate) fn check_requirement(declared: &Declared, name: &str, args: &[String]) -> Result<(), String> {
    let mut task = titled("task", "check");
    task.options
        .push(("reqlist".into(), Value::List(call_list(name, args)?)));
    Manifest::from_conf(&declared.tree(None, task))
        .map(drop)
        .map_err(describe)
}

fn describe(error: ManifestError) -> String {
    match error {
        ManifestError::UnknownAction { action, .. } => format!("unknown action `{action}`"),
        ManifestError::UnknownRequirement { name, .. } => format!("unknown requirement `{name}`"),
        ManifestError::BadAction { problem, .. } | ManifestError::BadRequirement { problem, .. } => {
            // Only the tables declared so far count while reading.
            problem.replace("which meta.conf does not declare", "which is not declared above")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_what_the_engine_installs() {
        let mut declared = Declared::default();
        declared.add("mbr", "mbr-a");
        declared.add("uboot-environment", "env");
        declared.add("file-resource", "rootfs.img");
        assert_eq!(
            check_action(&declared, "on-init", None, "mbr_write", &args(&["mbr-a"])),
            Ok(())
        );
        assert_eq!(
            check_action(
                &declared,
                "on-resource",
                Some("rootfs.img"),
                "raw_write",
                &args(&["2048"])
            ),
            Ok(())
        );
        assert_eq!(
            check_requirement(&declared, "require-uboot-variable", &args(&["env", "a", "b"])),
            Ok(())
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let declared = Declared::default();
        assert_eq!(
            check_action(&declared, "on-init", None, "fat_frob", &args(&["1"])),
            Err("unknown action `fat_frob`".into())
        );
        let err = check_action(&declared, "on-init", None, "mbr_write", &args(&["nope"])).expect_err("undeclared mbr");
        assert!(err.contains("mbr \"nope\", which is not declared above"), "{err}");
        let err =
            check_action(&declared, "on-init", None, "raw_write", &args(&["0"])).expect_err("raw_write in on-init");
        assert!(err.contains("on-resource"), "{err}");
        let err =
            check_action(&declared, "on-finish", None, "raw_memset", &args(&["0", "1", "256"])).expect_err("value 256");
        assert!(err.contains("between 0 and 255"), "{err}");
        assert_eq!(
            check_requirement(&declared, "require-moon-phase", &args(&["full"])),
            Err("unknown requirement `require-moon-phase`".into())
        );
        let many = args(&["1"; 10]);
        assert!(check_action(&declared, "on-init", None, "info", &many)
            .expect_err("ten arguments")
            .contains("at most 9"));
    }
}
