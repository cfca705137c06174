//! Decoding fwup's call lists: `funlist` into [`Action`]s, `reqlist` into
//! [`Requirement`]s.
//!
//! fwup stores each call as `argc, name, arg…` where `argc` counts the name
//! (`funlist={2,raw_write,2048,3,fat_mkdir,4096,"/boot"}`), at most
//! `FUN_MAX_ARGS` = 10. The argument checks are those of fwup's
//! `*_validate` functions (`functions.c`, `requirement.c`), done here so an
//! unknown action or a bad argument stops the install before anything is
//! written. Numbers are read like `strtoull(…, 0)`: decimal, `0x` hex or
//! leading-`0` octal; unlike C, junk such as `12abc` or `-1` is refused.

use super::conf::parse_u64;
use super::manifest::{Action, Requirement};

/// fwup's `FUN_MAX_ARGS`: the name plus at most nine arguments.
const MAX_ARGC: u64 = 10;
/// `raw_memset` counts are limited to what fits a signed 32-bit byte count.
const MAX_MEMSET_BLOCKS: u64 = i32::MAX as u64 / 512;
/// `trim` counts are limited to what fits a signed 64-bit byte count.
const MAX_TRIM_BLOCKS: u64 = i64::MAX as u64 / 512;

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

fn invalid<T>(msg: impl Into<String>) -> Result<T, CallError> {
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
            return Err(format!("{what} ends inside `{name}`: {argc} values announced, {} present", after.len()));
        }
        let (call, tail) = after.split_at(argc);
        let (name, args) = call.split_first().map_or(("", &[][..]), |(n, a)| (n.as_str(), a));
        calls.push(Call { name, args });
        rest = tail;
    }
    Ok(calls)
}

fn number(arg: &str, what: &str) -> Result<u64, CallError> {
    parse_u64(arg).ok_or_else(|| CallError::Invalid(format!("{what}, not `{arg}`")))
}

fn in_range(arg: &str, range: std::ops::RangeInclusive<u64>, what: &str) -> Result<u64, CallError> {
    number(arg, what).and_then(|n| if range.contains(&n) { Ok(n) } else { invalid(format!("{what}, not `{arg}`")) })
}

fn offset(arg: &str, name: &str) -> Result<u64, CallError> {
    number(arg, &format!("{name} requires a non-negative integer block offset"))
}

fn reference(name: &str, kind: &str, declared: &[&str], fun: &str) -> Result<String, CallError> {
    if declared.contains(&name) {
        Ok(name.to_string())
    } else {
        invalid(format!("{fun} refers to {kind} \"{name}\", which meta.conf does not declare"))
    }
}

/// `args` must have one of the `counts`; `usage` is fwup's wording.
fn arity<'a>(call: &Call<'a>, counts: &[usize], usage: &str) -> Result<&'a [String], CallError> {
    if counts.contains(&call.args.len()) {
        Ok(call.args)
    } else {
        invalid(format!("{} requires {usage} (got {} arguments)", call.name, call.args.len()))
    }
}

/// The resource of an `on-resource` handler, or an error for the others.
fn needs_resource<'a>(call: &Call<'_>, event: Event<'a>) -> Result<&'a str, CallError> {
    match event {
        Event::Resource(name) => Ok(name),
        _ => invalid(format!("{} only usable in on-resource", call.name)),
    }
}

/// Decodes one `funlist` call.
pub(super) fn decode_action(call: Call<'_>, event: Event<'_>, declared: &Declared<'_>) -> Result<Action, CallError> {
    let name = call.name;
    let s = |i: usize| call.args.get(i).cloned().unwrap_or_default();
    Ok(match name {
        "raw_write" => {
            needs_resource(&call, event)?;
            let Some((first, options)) = call.args.split_first() else {
                return invalid("raw_write requires a block offset");
            };
            let block_offset = offset(first, name)?;
            let cipher = RawWriteOptions::parse(options)?.cipher;
            Action::RawWrite { block_offset, cipher }
        }
        "raw_memset" => {
            let a = arity(&call, &[3], "a block offset, count, and value")?;
            Action::RawMemset {
                block_offset: offset(&a[0], name)?,
                block_count: in_range(&a[1], 1..=MAX_MEMSET_BLOCKS, "raw_memset requires a positive integer block count")?,
                value: in_range(&a[2], 0..=255, "raw_memset requires value to be between 0 and 255")?
                    .try_into()
                    .unwrap_or(u8::MAX),
            }
        }
        "fat_mkfs" => {
            let a = arity(&call, &[2], "a block offset and block count")?;
            Action::FatMkfs {
                block_offset: offset(&a[0], name)?,
                block_count: number(&a[1], "fat_mkfs requires a non-negative integer block count")?,
            }
        }
        "fat_attrib" => {
            let a = arity(&call, &[3], "a block offset, filename, and attributes (SHR)")?;
            if !a[2].chars().all(|c| "SHRshr".contains(c)) {
                return invalid(format!("fat_attrib only supports R, H, and S attributes, not `{}`", a[2]));
            }
            Action::FatAttrib { block_offset: offset(&a[0], name)?, path: s(1), attrib: s(2) }
        }
        "fat_write" => {
            let resource = needs_resource(&call, event)?;
            let a = arity(&call, &[1, 2], "a block offset and optionally a destination filename")?;
            // Without a filename the resource is written under its own name.
            let path = a.get(1).cloned().unwrap_or_else(|| resource.to_string());
            Action::FatWrite { block_offset: offset(&a[0], name)?, path }
        }
        "fat_mv" | "fat_mv!" => {
            let a = arity(&call, &[3], "a block offset, old filename, new filename")?;
            Action::FatMv { block_offset: offset(&a[0], name)?, from: s(1), to: s(2), force: name.ends_with('!') }
        }
        "fat_rm" | "fat_rm!" => {
            let a = arity(&call, &[2], "a block offset and filename")?;
            Action::FatRm { block_offset: offset(&a[0], name)?, path: s(1), must_exist: name.ends_with('!') }
        }
        "fat_cp" => {
            let a = arity(&call, &[3, 4], "a block offset, from filename, [destination block offset,] and to filename")?;
            let from_offset = offset(&a[0], name)?;
            match a.len() {
                3 => Action::FatCp { from_offset, from: s(1), to_offset: from_offset, to: s(2) },
                _ => Action::FatCp { from_offset, from: s(1), to_offset: offset(&a[2], name)?, to: s(3) },
            }
        }
        "fat_mkdir" => {
            let a = arity(&call, &[2], "a block offset and directory name")?;
            Action::FatMkdir { block_offset: offset(&a[0], name)?, path: s(1) }
        }
        "fat_setlabel" => {
            let a = arity(&call, &[2], "a block offset and name")?;
            Action::FatSetlabel { block_offset: offset(&a[0], name)?, label: s(1) }
        }
        "fat_touch" => {
            let a = arity(&call, &[2], "a block offset and filename")?;
            Action::FatTouch { block_offset: offset(&a[0], name)?, path: s(1) }
        }
        "mbr_write" => {
            let a = arity(&call, &[1], "an mbr")?;
            Action::MbrWrite { mbr: reference(&a[0], "mbr", &declared.mbrs, name)? }
        }
        "gpt_write" => {
            let a = arity(&call, &[1], "a gpt")?;
            Action::GptWrite { gpt: reference(&a[0], "gpt", &declared.gpts, name)? }
        }
        "trim" => {
            let a = arity(&call, &[2], "a block offset and count")?;
            Action::Trim {
                block_offset: offset(&a[0], name)?,
                block_count: in_range(&a[1], 1..=MAX_TRIM_BLOCKS, "trim requires a positive block count")?,
            }
        }
        "uboot_clearenv" | "uboot_recover" | "uboot_setenv" | "uboot_unsetenv" => {
            let (counts, usage): (&[usize], &str) = match name {
                "uboot_setenv" => (&[3], "a uboot-environment reference, variable name and value"),
                "uboot_unsetenv" => (&[2], "a uboot-environment reference and a variable name"),
                _ => (&[1], "a uboot-environment reference"),
            };
            let a = arity(&call, counts, usage)?;
            let env = reference(&a[0], "uboot-environment", &declared.uboot_envs, name)?;
            match name {
                "uboot_clearenv" => Action::UbootClearenv { env },
                "uboot_recover" => Action::UbootRecover { env },
                "uboot_setenv" => Action::UbootSetenv { env, name: s(1), value: s(2) },
                _ => Action::UbootUnsetenv { env, name: s(1) },
            }
        }
        "error" => Action::Error { message: arity(&call, &[1], "a message parameter")?[0].clone() },
        "info" => Action::Info { message: arity(&call, &[1], "a message parameter")?[0].clone() },
        "execute" => Action::Execute { command: arity(&call, &[1], "a command")?[0].clone() },
        "path_write" => {
            needs_resource(&call, event)?;
            Action::PathWrite { path: arity(&call, &[1], "a file path")?[0].clone() }
        }
        "pipe_write" => {
            needs_resource(&call, event)?;
            Action::PipeWrite { command: arity(&call, &[1], "a command")?[0].clone() }
        }
        other => return Err(CallError::Unknown(other.to_string())),
    })
}

/// `raw_write`'s optional `cipher=…` and `secret=…` arguments (dm-crypt
/// compatible encryption; kept so the engine can refuse it by name).
struct RawWriteOptions {
    cipher: Option<String>,
}

impl RawWriteOptions {
    fn parse(options: &[String]) -> Result<RawWriteOptions, CallError> {
        let (mut cipher, mut secret) = (None, None);
        for option in options {
            match option.split_once('=') {
                Some(("cipher", value)) => cipher = Some(value.to_string()),
                Some(("secret", _)) => secret = Some(()),
                Some(_) => return invalid(format!("unexpected parameter to raw_write: `{option}`")),
                None => return invalid(format!("expecting '=' in optional raw_write parameter `{option}`")),
            }
        }
        if cipher.is_some() != secret.is_some() {
            return invalid("raw_write requires both a cipher and secret if one is supplied");
        }
        Ok(RawWriteOptions { cipher })
    }
}

/// Decodes one `reqlist` call.
pub(super) fn decode_requirement(call: Call<'_>, declared: &Declared<'_>) -> Result<Requirement, CallError> {
    let name = call.name;
    let s = |i: usize| call.args.get(i).cloned().unwrap_or_default();
    Ok(match name {
        "require-partition-offset" => {
            let a = arity(&call, &[2], "a partition number and a block offset")?;
            let partition = in_range(&a[0], 0..=3, "require-partition-offset requires the partition number to be 0, 1, 2, or 3")?;
            Requirement::PartitionOffset {
                partition: u32::try_from(partition).unwrap_or(u32::MAX),
                block_offset: offset(&a[1], name)?,
            }
        }
        "require-fat-file-exists" => {
            let a = arity(&call, &[2], "a FAT FS block offset and a filename")?;
            Requirement::FatFileExists { block_offset: offset(&a[0], name)?, path: s(1) }
        }
        "require-fat-file-match" => {
            let a = arity(&call, &[3], "a FAT FS block offset, a filename, and a pattern")?;
            Requirement::FatFileMatch { block_offset: offset(&a[0], name)?, path: s(1), pattern: s(2) }
        }
        "require-uboot-variable" => {
            let a = arity(&call, &[3], "a uboot-environment reference, variable name, and value")?;
            let env = reference(&a[0], "uboot-environment", &declared.uboot_envs, name)?;
            Requirement::UbootVariable { env, name: s(1), value: s(2) }
        }
        "require-path-on-device" => {
            arity(&call, &[2], "a path and a device")?;
            Requirement::PathOnDevice { path: s(0), device: s(1) }
        }
        "require-path-at-offset" => {
            let a = arity(&call, &[2], "a path and a block offset")?;
            Requirement::PathAtOffset { path: s(0), block_offset: offset(&a[1], name)? }
        }
        "require-execute" => Requirement::Execute { command: arity(&call, &[1], "a command")?[0].clone() },
        other => return Err(CallError::Unknown(other.to_string())),
    })
}
