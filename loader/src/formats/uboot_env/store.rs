//! Reading and writing an environment on a medium, with fwup's choice of
//! copy for redundant environments.
//!
//! fwup (and U-Boot) treat the flag byte of each copy as a counter that
//! wraps at 256: the copy whose flag is ahead of the other's by 1 to 127
//! steps is tried first (equal flags: the primary); if it is invalid the
//! other one is used. A write goes to the
//! copy that was *not* read, with the flag one higher, so the copy read
//! stays intact until the new one is complete. `uboot_clearenv` and
//! `uboot_recover` start afresh: both copies, flag 1.

use super::codec::{decode, encode};
use super::{UbootEnv, UbootEnvSpec};
use crate::formats::error::FormatError;
use crate::formats::{Medium, BLOCK_SIZE};

/// Which copies the next write goes to, and the flag it counts up from.
#[derive(Debug, Clone, Copy)]
struct Target {
    primary: bool,
    secondary: bool,
    /// Flag byte of the copy that was read (redundant environments).
    flag: u8,
}

impl Target {
    /// A freshly created environment: every copy, flag 0 + 1.
    const FRESH: Target = Target {
        primary: true,
        secondary: true,
        flag: 0,
    };
}

/// What reading the environment found, and where the next write goes.
struct Found {
    env: Result<UbootEnv, FormatError>,
    target: Target,
}

/// The current environment: the valid copy, or for a redundant pair the
/// newest valid copy. [`FormatError::InvalidEnv`] when there is none (blank
/// or corrupt: guards treat that as "variable not set").
pub fn read(m: &mut (impl Medium + ?Sized), spec: &UbootEnvSpec) -> Result<UbootEnv, FormatError> {
    inspect(m, spec)?.env
}

/// Writes `env` where fwup writes after reading: the single copy, or the
/// older copy of a redundant pair with its flag one above the newer. If no
/// copy is valid, both copies are written with flag 1, like `uboot_recover`.
pub fn write(m: &mut (impl Medium + ?Sized), spec: &UbootEnvSpec, env: &UbootEnv) -> Result<(), FormatError> {
    let found = inspect(m, spec)?;
    let target = if found.env.is_ok() { found.target } else { Target::FRESH };
    store(m, spec, env, target)
}

/// fwup's `uboot_clearenv`: an empty environment in every copy (flag 1).
pub fn clear(m: &mut (impl Medium + ?Sized), spec: &UbootEnvSpec) -> Result<(), FormatError> {
    store(m, spec, &UbootEnv::new(), Target::FRESH)
}

/// fwup's `uboot_setenv`: read (failing if there is no valid copy), set,
/// write.
pub fn setenv(m: &mut (impl Medium + ?Sized), spec: &UbootEnvSpec, name: &str, value: &str) -> Result<(), FormatError> {
    let found = inspect(m, spec)?;
    let mut env = found.env?;
    env.set(name, value);
    store(m, spec, &env, found.target)
}

/// fwup's `uboot_unsetenv`: like [`setenv`]; unsetting a variable that is
/// not there still rewrites the environment.
pub fn unsetenv(m: &mut (impl Medium + ?Sized), spec: &UbootEnvSpec, name: &str) -> Result<(), FormatError> {
    let found = inspect(m, spec)?;
    let mut env = found.env?;
    env.unset(name);
    store(m, spec, &env, found.target)
}

/// fwup's `uboot_recover`: if no copy is valid, write an empty environment
/// to every copy. Returns whether it wrote.
pub fn recover(m: &mut (impl Medium + ?Sized), spec: &UbootEnvSpec) -> Result<bool, FormatError> {
    match inspect(m, spec)?.env {
        Ok(_) => Ok(false),
        Err(e) if e.is_invalid_env() => clear(m, spec).map(|()| true),
        Err(e) => Err(e),
    }
}

/// Reads the copies and decides, as fwup does, which one counts and which
/// to overwrite next. Only I/O errors fail here; an invalid environment is
/// reported in `Found::env`.
fn inspect(m: &mut (impl Medium + ?Sized), spec: &UbootEnvSpec) -> Result<Found, FormatError> {
    let primary_block = spec.block_offset;
    let primary = read_copy(m, spec, primary_block)?;
    let Some(secondary_block) = spec.redundant_block_offset else {
        let env = decode(spec, primary_block, &primary);
        return Ok(Found {
            env,
            target: Target {
                primary: true,
                secondary: false,
                flag: 0,
            },
        });
    };
    let secondary = read_copy(m, spec, secondary_block)?;

    let (flag1, flag2) = (primary[4], secondary[4]);
    let primary_first = primary_is_newer(flag1, flag2);
    let (first, second) = if primary_first {
        ((primary_block, &primary, flag1), (secondary_block, &secondary, flag2))
    } else {
        ((secondary_block, &secondary, flag2), (primary_block, &primary, flag1))
    };
    // The next write goes to the copy that was not read.
    let other_than = |read_primary: bool, flag: u8| Target {
        primary: !read_primary,
        secondary: read_primary,
        flag,
    };

    if let Ok(env) = decode(spec, first.0, first.1) {
        return Ok(Found {
            env: Ok(env),
            target: other_than(primary_first, first.2),
        });
    }
    match decode(spec, second.0, second.1) {
        Ok(env) => Ok(Found {
            env: Ok(env),
            target: other_than(!primary_first, second.2),
        }),
        Err(_) => Ok(Found {
            env: Err(FormatError::InvalidEnv {
                block: primary_block,
                problem: format!(
                    "neither copy (blocks {primary_block} and {secondary_block}) holds a valid redundant environment"
                ),
            }),
            target: Target::FRESH,
        }),
    }
}

/// fwup's `uboot_env_read_redundant`: the secondary is newer only when its
/// flag is 1 to 127 steps ahead of the primary's, counting modulo 256 (so
/// 128 follows 127 and 0 follows 255 however many writes came before).
fn primary_is_newer(flag1: u8, flag2: u8) -> bool {
    let ahead = flag2.wrapping_sub(flag1);
    ahead == 0 || ahead >= 128
}

fn store(
    m: &mut (impl Medium + ?Sized),
    spec: &UbootEnvSpec,
    env: &UbootEnv,
    target: Target,
) -> Result<(), FormatError> {
    let bytes = encode(spec, env, target.flag.wrapping_add(1))?;
    let mut blocks = Vec::with_capacity(2);
    if target.primary {
        blocks.push(spec.block_offset);
    }
    if let (true, Some(redundant)) = (target.secondary, spec.redundant_block_offset) {
        blocks.push(redundant);
    }
    for block in blocks {
        m.write_at(block * BLOCK_SIZE, &bytes)
            .map_err(FormatError::io(format!("writing {} at block {block}", spec.label())))?;
    }
    Ok(())
}

fn read_copy(m: &mut (impl Medium + ?Sized), spec: &UbootEnvSpec, block: u64) -> Result<Vec<u8>, FormatError> {
    let mut buf = vec![0u8; spec.size()];
    m.read_at(block * BLOCK_SIZE, &mut buf)
        .map_err(FormatError::io(format!("reading {} at block {block}", spec.label())))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::primary_is_newer;

    #[test]
    fn the_newer_copy_is_found_across_every_wrap_of_the_counter() {
        // After n writes that alternate copies, the last one written has
        // flag n + 1 (mod 256) and must be read first.
        for n in 0u16..600 {
            let newest = (n as u8).wrapping_add(1);
            let older = newest.wrapping_sub(1);
            let (flag1, flag2) = if n % 2 == 0 { (newest, older) } else { (older, newest) };
            assert_eq!(
                primary_is_newer(flag1, flag2),
                n % 2 == 0,
                "after {n} writes: flags {flag1}/{flag2}"
            );
        }
        assert!(primary_is_newer(7, 7), "equal flags: the primary, as fwup");
        assert!(primary_is_newer(127, 255) && !primary_is_newer(127, 128));
    }
}
