//! Decoding one `funlist` call into an [`Action`], with the argument
//! checks of fwup's `*_validate` functions (`functions.c`).

use super::manifest::Action;
use super::manifest_calls::{
    arity, in_range, invalid, needs_resource, number, offset, reference, Call, CallError, Declared, Event,
};

/// `raw_memset` counts are limited to what fits a signed 32-bit byte count.
const MAX_MEMSET_BLOCKS: u64 = i32::MAX as u64 / 512;
/// `trim` counts are limited to what fits a signed 64-bit byte count.
const MAX_TRIM_BLOCKS: u64 = i64::MAX as u64 / 512;

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
                block_count: in_range(
                    &a[1],
                    1..=MAX_MEMSET_BLOCKS,
                    "raw_memset requires a positive integer block count",
                )?,
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
                return invalid(format!(
                    "fat_attrib only supports R, H, and S attributes, not `{}`",
                    a[2]
                ));
            }
            Action::FatAttrib {
                block_offset: offset(&a[0], name)?,
                path: s(1),
                attrib: s(2),
            }
        }
        "fat_write" => {
            let resource = needs_resource(&call, event)?;
            let a = arity(&call, &[1, 2], "a block offset and optionally a destination filename")?;
            // Without a filename the resource is written under its own name.
            let path = a.get(1).cloned().unwrap_or_else(|| resource.to_string());
            Action::FatWrite {
                block_offset: offset(&a[0], name)?,
                path,
            }
        }
        "fat_mv" | "fat_mv!" => {
            let a = arity(&call, &[3], "a block offset, old filename, new filename")?;
            Action::FatMv {
                block_offset: offset(&a[0], name)?,
                from: s(1),
                to: s(2),
                force: name.ends_with('!'),
            }
        }
        "fat_rm" | "fat_rm!" => {
            let a = arity(&call, &[2], "a block offset and filename")?;
            Action::FatRm {
                block_offset: offset(&a[0], name)?,
                path: s(1),
                must_exist: name.ends_with('!'),
            }
        }
        "fat_cp" => {
            let a = arity(
                &call,
                &[3, 4],
                "a block offset, from filename, [destination block offset,] and to filename",
            )?;
            let from_offset = offset(&a[0], name)?;
            match a.len() {
                3 => Action::FatCp {
                    from_offset,
                    from: s(1),
                    to_offset: from_offset,
                    to: s(2),
                },
                _ => Action::FatCp {
                    from_offset,
                    from: s(1),
                    to_offset: offset(&a[2], name)?,
                    to: s(3),
                },
            }
        }
        "fat_mkdir" => {
            let a = arity(&call, &[2], "a block offset and directory name")?;
            Action::FatMkdir {
                block_offset: offset(&a[0], name)?,
                path: s(1),
            }
        }
        "fat_setlabel" => {
            let a = arity(&call, &[2], "a block offset and name")?;
            Action::FatSetlabel {
                block_offset: offset(&a[0], name)?,
                label: s(1),
            }
        }
        "fat_touch" => {
            let a = arity(&call, &[2], "a block offset and filename")?;
            Action::FatTouch {
                block_offset: offset(&a[0], name)?,
                path: s(1),
            }
        }
        "mbr_write" => {
            let a = arity(&call, &[1], "an mbr")?;
            Action::MbrWrite {
                mbr: reference(&a[0], "mbr", &declared.mbrs, name)?,
            }
        }
        "gpt_write" => {
            let a = arity(&call, &[1], "a gpt")?;
            Action::GptWrite {
                gpt: reference(&a[0], "gpt", &declared.gpts, name)?,
            }
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
                "uboot_setenv" => Action::UbootSetenv {
                    env,
                    name: s(1),
                    value: s(2),
                },
                _ => Action::UbootUnsetenv { env, name: s(1) },
            }
        }
        "error" => Action::Error {
            message: arity(&call, &[1], "a message parameter")?[0].clone(),
        },
        "info" => Action::Info {
            message: arity(&call, &[1], "a message parameter")?[0].clone(),
        },
        "execute" => Action::Execute {
            command: arity(&call, &[1], "a command")?[0].clone(),
        },
        "path_write" => {
            needs_resource(&call, event)?;
            Action::PathWrite {
                path: arity(&call, &[1], "a file path")?[0].clone(),
            }
        }
        "pipe_write" => {
            needs_resource(&call, event)?;
            Action::PipeWrite {
                command: arity(&call, &[1], "a command")?[0].clone(),
            }
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
