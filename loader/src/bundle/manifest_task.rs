//! Reading one `task` section: its guards and its event handlers.
//!
//! Guards come from `reqlist` (plus the deprecated
//! `require-partition1-offset`); handlers are `on-init`, `on-finish`,
//! `on-error` (one each; a repeated one is the same section to libconfuse)
//! and `on-resource "NAME"` (one per resource, which must be declared).

use std::collections::HashSet;

use super::conf::{Section, Value};
use super::manifest::{Action, Requirement, ResourceHandler, Task};
use super::manifest_actions::decode_action;
use super::manifest_build::{conf_int, duplicate, titled, unknown_section, warn_unknown_options, ManifestError};
use super::manifest_calls::{decode_requirement, split_calls, CallError, Declared, Event};

const TASK_OPTIONS: [&str; 4] = [
    "reqlist",
    "require-partition1-offset",
    "require-unmounted-destination",
    "verify-on-the-fly",
];
const EVENT_KINDS: [&str; 3] = ["on-init", "on-finish", "on-error"];

/// A `funlist`/`reqlist` value as a flat list (a single value is a list
/// of one, as libconfuse stores it).
fn as_list(value: Option<&Value>) -> &[String] {
    match value {
        None => &[],
        Some(Value::Scalar(s)) => std::slice::from_ref(s),
        Some(Value::List(items)) => items,
    }
}

/// Reads one `task "NAME" { … }` section.
pub(super) fn read_task(
    section: &Section,
    declared: &Declared<'_>,
    resources: &HashSet<&str>,
    warnings: &mut Vec<String>,
) -> Result<Task, ManifestError> {
    let name = titled(section, "meta.conf")?;
    let location = section.to_string();
    warn_unknown_options(section, &TASK_OPTIONS, &location, warnings);
    let mut task = Task {
        name: name.to_string(),
        ..Task::default()
    };

    // Deprecated guards; the last two never changed what fwup writes.
    match section.str("require-partition1-offset")? {
        None | Some("-1") => {}
        Some(text) => {
            let block_offset = conf_int(text)
                .ok_or_else(|| section.bad("require-partition1-offset", &format!("`{text}` is not a block offset")))?;
            task.requirements.push(Requirement::PartitionOffset {
                partition: 1,
                block_offset,
            });
        }
    }
    section.bool("require-unmounted-destination")?;
    section.bool("verify-on-the-fly")?;

    let reqlist = as_list(section.get("reqlist"));
    let calls = split_calls(reqlist, "reqlist").map_err(|problem| ManifestError::BadRequirement {
        task: name.to_string(),
        problem,
    })?;
    for call in calls {
        let requirement = decode_requirement(call, declared).map_err(|e| match e {
            CallError::Unknown(n) => ManifestError::UnknownRequirement {
                task: name.to_string(),
                name: n,
            },
            CallError::Invalid(problem) => ManifestError::BadRequirement {
                task: name.to_string(),
                problem,
            },
        })?;
        task.requirements.push(requirement);
    }

    let mut handled = HashSet::new();
    for sub in &section.sections {
        let kind = sub.kind.as_str();
        if EVENT_KINDS.contains(&kind) {
            if let Some(title) = &sub.title {
                return Err(ManifestError::UnexpectedTitle {
                    parent: location.clone(),
                    kind: kind.to_string(),
                    title: title.clone(),
                });
            }
            continue;
        }
        if kind != "on-resource" {
            return Err(unknown_section(&location, kind));
        }
        let resource = titled(sub, &location)?;
        if !handled.insert(resource) {
            return Err(duplicate(&location, sub, resource));
        }
        if !resources.contains(resource) {
            return Err(ManifestError::UnknownResource {
                task: name.to_string(),
                resource: resource.to_string(),
            });
        }
        let event = Event::Resource(resource);
        let actions = read_handler(&[sub], name, event, declared, warnings)?;
        let delta_source = sub.options.iter().any(|(k, _)| k.starts_with("delta-source-"));
        task.on_resource.push(ResourceHandler {
            resource: resource.to_string(),
            actions,
            delta_source,
        });
    }
    for (kind, event) in EVENT_KINDS.iter().zip([Event::Init, Event::Finish, Event::Error]) {
        // A repeated `on-init { }` is the same section to libconfuse.
        let sections: Vec<&Section> = section.children(kind).collect();
        let actions = read_handler(&sections, name, event, declared, warnings)?;
        match event {
            Event::Init => task.on_init = actions,
            Event::Finish => task.on_finish = actions,
            _ => task.on_error = actions,
        }
    }
    Ok(task)
}

fn handler_label(event: Event<'_>) -> String {
    match event {
        Event::Init => "on-init".into(),
        Event::Finish => "on-finish".into(),
        Event::Error => "on-error".into(),
        Event::Resource(name) => format!("on-resource \"{name}\""),
    }
}

/// The actions of one event handler (possibly written as several sections
/// of the same kind; the last `funlist` wins as with libconfuse).
fn read_handler(
    sections: &[&Section],
    task: &str,
    event: Event<'_>,
    declared: &Declared<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Action>, ManifestError> {
    let handler = handler_label(event);
    let location = format!("task \"{task}\", {handler}");
    let bad = |problem: String| ManifestError::BadAction {
        task: task.to_string(),
        handler: handler.clone(),
        problem,
    };
    let mut funlist = None;
    for section in sections {
        if let Some(sub) = section.sections.first() {
            return Err(unknown_section(&location, &sub.kind));
        }
        for (key, value) in &section.options {
            match key.as_str() {
                "funlist" => funlist = Some(value),
                "verify-on-the-fly" => {
                    section.bool(key)?;
                }
                k if k.starts_with("delta-source-") && matches!(event, Event::Resource(_)) => {}
                _ => warnings.push(format!("{location}: unknown option `{key}` ignored")),
            }
        }
    }
    let calls = split_calls(as_list(funlist), "funlist").map_err(bad)?;
    calls
        .into_iter()
        .map(|call| {
            decode_action(call, event, declared).map_err(|e| match e {
                CallError::Unknown(action) => ManifestError::UnknownAction {
                    task: task.to_string(),
                    handler: handler.clone(),
                    action,
                },
                CallError::Invalid(problem) => bad(problem),
            })
        })
        .collect()
}
