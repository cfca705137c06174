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

const TASK_OPTIONS: [&str; 5] = [
    "__unknown",
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

/// How a task's calls are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Calls {
    /// Every action and guard must be known and valid (`pack`, checks).
    Strict,
    /// As fwup reads `meta.conf` at install time: what it cannot run makes
    /// the task unusable ([`Action::Unusable`], [`Requirement::Unusable`])
    /// instead of the bundle.
    Install,
}

/// Reads one `task "NAME" { … }` section.
pub(super) fn read_task(
    section: &Section,
    declared: &Declared<'_>,
    resources: &HashSet<&str>,
    calls_mode: Calls,
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
    let unusable = |requirement: &str, problem: String, warnings: &mut Vec<String>| {
        warnings.push(format!(
            "{location}, reqlist: {problem}; the task is never chosen, as in fwup"
        ));
        Requirement::Unusable {
            requirement: requirement.to_string(),
            problem,
        }
    };
    match split_calls(reqlist, "reqlist") {
        Err(problem) if calls_mode == Calls::Install => task.requirements.push(unusable("reqlist", problem, warnings)),
        Err(problem) => {
            return Err(ManifestError::BadRequirement {
                task: name.to_string(),
                problem,
            })
        }
        Ok(calls) => {
            for call in calls {
                match (decode_requirement(call, declared), calls_mode) {
                    (Ok(requirement), _) => task.requirements.push(requirement),
                    (Err(e), Calls::Install) => {
                        let problem = call_problem(&e, "requirement");
                        task.requirements.push(unusable(call.name, problem, warnings));
                    }
                    (Err(CallError::Unknown(n)), Calls::Strict) => {
                        return Err(ManifestError::UnknownRequirement {
                            task: name.to_string(),
                            name: n,
                        })
                    }
                    (Err(CallError::Invalid(problem)), Calls::Strict) => {
                        return Err(ManifestError::BadRequirement {
                            task: name.to_string(),
                            problem,
                        })
                    }
                }
            }
        }
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
        let actions = read_handler(&[sub], name, event, declared, calls_mode, warnings)?;
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
        let actions = read_handler(&sections, name, event, declared, calls_mode, warnings)?;
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
    calls_mode: Calls,
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
    let consequence = match event {
        Event::Error => "the handler stops there if it runs",
        _ => "the task is refused if chosen (the other tasks are not affected)",
    };
    let mut unusable = |action: &str, problem: String| {
        warnings.push(format!("{location}: {problem}; {consequence}"));
        Action::Unusable {
            action: action.to_string(),
            problem,
        }
    };
    let calls = match split_calls(as_list(funlist), "funlist") {
        Ok(calls) => calls,
        Err(problem) if calls_mode == Calls::Install => return Ok(vec![unusable("funlist", problem)]),
        Err(problem) => return Err(bad(problem)),
    };
    calls
        .into_iter()
        .map(|call| match (decode_action(call, event, declared), calls_mode) {
            (Ok(action), _) => Ok(action),
            (Err(e), Calls::Install) => Ok(unusable(call.name, call_problem(&e, "action"))),
            (Err(CallError::Unknown(action)), Calls::Strict) => Err(ManifestError::UnknownAction {
                task: task.to_string(),
                handler: handler.clone(),
                action,
            }),
            (Err(CallError::Invalid(problem)), Calls::Strict) => Err(bad(problem)),
        })
        .collect()
}

/// A refused call as a sentence: `unknown action `x``, or the problem.
fn call_problem(e: &CallError, what: &str) -> String {
    match e {
        CallError::Unknown(name) => format!("unknown {what} `{name}`"),
        CallError::Invalid(problem) => problem.clone(),
    }
}
