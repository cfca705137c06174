//! fwup's call lists (`funlist`, `reqlist`): splitting them into calls,
//! the argument checks every call shares, and decoding `reqlist` calls
//! into [`Requirement`]s (actions are in `manifest_actions`).
//!
//! fwup stores each call as `argc, name, arg…` where `argc` counts the name
//! (`funlist={2,raw_write,2048,3,fat_mkdir,4096,"/boot"}`), at most
//! `FUN_MAX_ARGS` = 10. The argument checks are those of fwup's
//! `*_validate` functions (`functions.c`, `requirement.c`), done here so an
//! unknown action or a bad argument stops the install before anything is
//! written. Numbers are read like `strtoull(…, 0)`: decimal, `0x` hex or
//! leading-`0` octal; unlike C, junk such as `12abc` or `-1` is refused.

use super::conf::parse_u64;
use super::manifest::Requirement;

/// fwup's `FUN_MAX_ARGS`: the name plus at most nine arguments.
const MAX_ARGC: u64 = 10;

/// One decoded `argc, name, args…` entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call<'a> {
    pub name: &'a str,
    pub args: &'a [String],
}

/// Which event handler a `funlist` belongs to; some actions need the
/// resource's data and only work in `on-resource`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Event<'a> {
    Init,
    Finish,
    Error,
    Resource(&'a str),
}

/// Names the top-level sections declare, so references can be checked.
#[derive(Debug, Default)]
pub(super) struct Declared<'a> {
    pub mbrs: Vec<&'a str>,
    pub gpts: Vec<&'a str>,
    pub uboot_envs: Vec<&'a str>,
}

/// Why one call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallError {
    Unknown(String),
    Invalid(String),
}

/// Shorthand for an argument error.
pub(super) fn invalid<T>(msg: impl Into<String>) -> Result<T, CallError> {
    Err(CallError::Invalid(msg.into()))
}

/// Splits a call list into calls; `what` is `funlist` or `reqlist`.
pub(super) fn split_calls<'a>(list: &'a [String], what: &str) -> Result<Vec<Call<'a>>, String> {
    let mut calls = Vec::new();
    let mut rest = list;
    while let Some((argc_text, after)) = rest.split_first() {
        let argc = parse_u64(argc_text)
            .filter(|n| (1..=MAX_ARGC).contains(n))
            .ok_or_else(|| format!("{what} entry `{argc_text}` is not an argument count from 1 to {MAX_ARGC}"))?;
        let argc = usize::try_from(argc).unwrap_or(usize::MAX);
        if after.len() < argc {
            let name = after.first().map_or("", String::as_str);
            return Err(format!(
                "{what} ends inside `{name}`: {argc} values announced, {} present",
                after.len()
            ));
        }
        let (call, tail) = after.split_at(argc);
        let (name, args) = call.split_first().map_or(("", &[][..]), |(n, a)| (n.as_str(), a));
        calls.push(Call { name, args });
        rest = tail;
    }
    Ok(calls)
}

/// An unsigned number; `what` is the message when it is not one.
pub(super) fn number(arg: &str, what: &str) -> Result<u64, CallError> {
    parse_u64(arg).ok_or_else(|| CallError::Invalid(format!("{what}, not `{arg}`")))
}

/// A number inside `range`.
pub(super) fn in_range(arg: &str, range: std::ops::RangeInclusive<u64>, what: &str) -> Result<u64, CallError> {
    number(arg, what).and_then(|n| {
        if range.contains(&n) {
            Ok(n)
        } else {
            invalid(format!("{what}, not `{arg}`"))
        }
    })
}

/// A block offset argument of function `name`.
pub(super) fn offset(arg: &str, name: &str) -> Result<u64, CallError> {
    number(arg, &format!("{name} requires a non-negative integer block offset"))
}

/// A reference to a declared `mbr`, `gpt` or `uboot-environment`.
pub(super) fn reference(name: &str, kind: &str, declared: &[&str], fun: &str) -> Result<String, CallError> {
    if declared.contains(&name) {
        Ok(name.to_string())
    } else {
        invalid(format!(
            "{fun} refers to {kind} \"{name}\", which meta.conf does not declare"
        ))
    }
}

/// `args` must have one of the `counts`; `usage` is fwup's wording.
pub(super) fn arity<'a>(call: &Call<'a>, counts: &[usize], usage: &str) -> Result<&'a [String], CallError> {
    if counts.contains(&call.args.len()) {
        Ok(call.args)
    } else {
        invalid(format!(
            "{} requires {usage} (got {} arguments)",
            call.name,
            call.args.len()
        ))
    }
}

/// The resource of an `on-resource` handler, or an error for the others.
pub(super) fn needs_resource<'a>(call: &Call<'_>, event: Event<'a>) -> Result<&'a str, CallError> {
    match event {
        Event::Resource(name) => Ok(name),
        _ => invalid(format!("{} only usable in on-resource", call.name)),
    }
}

/// Decodes one `reqlist` call.
pub(super) fn decode_requirement(call: Call<'_>, declared: &Declared<'_>) -> Result<Requirement, CallError> {
    let name = call.name;
    let s = |i: usize| call.args.get(i).cloned().unwrap_or_default();
    Ok(match name {
        "require-partition-offset" => {
            let a = arity(&call, &[2], "a partition number and a block offset")?;
            let partition = in_range(
                &a[0],
                0..=3,
                "require-partition-offset requires the partition number to be 0, 1, 2, or 3",
            )?;
            Requirement::PartitionOffset {
                partition: u32::try_from(partition).unwrap_or(u32::MAX),
                block_offset: offset(&a[1], name)?,
            }
        }
        "require-fat-file-exists" => {
            let a = arity(&call, &[2], "a FAT FS block offset and a filename")?;
            Requirement::FatFileExists {
                block_offset: offset(&a[0], name)?,
                path: s(1),
            }
        }
        "require-fat-file-match" => {
            let a = arity(&call, &[3], "a FAT FS block offset, a filename, and a pattern")?;
            Requirement::FatFileMatch {
                block_offset: offset(&a[0], name)?,
                path: s(1),
                pattern: s(2),
            }
        }
        "require-uboot-variable" => {
            let a = arity(&call, &[3], "a uboot-environment reference, variable name, and value")?;
            let env = reference(&a[0], "uboot-environment", &declared.uboot_envs, name)?;
            Requirement::UbootVariable {
                env,
                name: s(1),
                value: s(2),
            }
        }
        "require-path-on-device" => {
            arity(&call, &[2], "a path and a device")?;
            Requirement::PathOnDevice {
                path: s(0),
                device: s(1),
            }
        }
        "require-path-at-offset" => {
            let a = arity(&call, &[2], "a path and a block offset")?;
            Requirement::PathAtOffset {
                path: s(0),
                block_offset: offset(&a[1], name)?,
            }
        }
        "require-execute" => Requirement::Execute {
            command: arity(&call, &[1], "a command")?[0].clone(),
        },
        other => return Err(CallError::Unknown(other.to_string())),
    })
}
