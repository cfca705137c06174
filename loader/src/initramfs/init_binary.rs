//! Checks that `/init` can run as the first process: a 64-bit x86 ELF
//! executable with no program interpreter. A dynamically linked binary
//! would make the kernel panic with "No working init found", far from the
//! build that caused it, so the initramfs builder refuses it instead.

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const CLASS_64: u8 = 2;
const LITTLE_ENDIAN: u8 = 1;
const TYPE_EXEC: u16 = 2;
/// Position-independent executables (static-pie) are `ET_DYN`.
const TYPE_DYN: u16 = 3;
const MACHINE_X86_64: u16 = 62;
const PT_INTERP: u32 = 3;
const HEADER_LEN: usize = 64;

/// `Ok` for a static x86-64 executable; otherwise why not, in words for the person building.
pub fn check(binary: &[u8]) -> Result<(), String> {
    if binary.len() < HEADER_LEN || &binary[..4] != ELF_MAGIC {
        return Err("not an ELF executable; give the loader binary built for x86_64-unknown-linux-musl".to_owned());
    }
    if binary[4] != CLASS_64 || binary[5] != LITTLE_ENDIAN || u16_at(binary, 18) != Some(MACHINE_X86_64) {
        return Err("not an x86-64 binary; build for x86_64-unknown-linux-musl".to_owned());
    }
    if !matches!(u16_at(binary, 16), Some(TYPE_EXEC | TYPE_DYN)) {
        return Err("an ELF file but not an executable".to_owned());
    }
    let table = program_headers(binary).ok_or("truncated ELF program header table")?;
    for entry in table {
        if u32_at(entry, 0) == Some(PT_INTERP) {
            return Err(
                "dynamically linked (it names a program interpreter), but the initramfs has no \
                 shared libraries; build for x86_64-unknown-linux-musl"
                    .to_owned(),
            );
        }
    }
    Ok(())
}

/// The program header entries, each a slice of `e_phentsize` bytes.
fn program_headers(binary: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let offset = usize::try_from(u64_at(binary, 32)?).ok()?;
    let entry_len = usize::from(u16_at(binary, 54)?);
    let count = usize::from(u16_at(binary, 56)?);
    if entry_len < 4 && count > 0 {
        return None;
    }
    let table = binary.get(offset..offset.checked_add(entry_len.checked_mul(count)?)?)?;
    Some(table.chunks_exact(entry_len.max(1)).take(count))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// A minimal ELF image for tests: header plus program headers of the given types.
#[cfg(test)]
pub(crate) fn fake_elf(program_header_types: &[u32]) -> Vec<u8> {
    let mut elf = vec![0u8; HEADER_LEN];
    elf[..4].copy_from_slice(ELF_MAGIC);
    elf[4] = CLASS_64;
    elf[5] = LITTLE_ENDIAN;
    elf[6] = 1;
    elf[16..18].copy_from_slice(&TYPE_EXEC.to_le_bytes());
    elf[18..20].copy_from_slice(&MACHINE_X86_64.to_le_bytes());
    elf[32..40].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf[56..58].copy_from_slice(&(program_header_types.len() as u16).to_le_bytes());
    for kind in program_header_types {
        let mut entry = [0u8; 56];
        entry[..4].copy_from_slice(&kind.to_le_bytes());
        elf.extend_from_slice(&entry);
    }
    elf
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PT_LOAD: u32 = 1;

    #[test]
    fn static_executable_passes() {
        check(&fake_elf(&[PT_LOAD, PT_LOAD])).unwrap();
    }

    #[test]
    fn dynamic_executable_is_refused() {
        let err = check(&fake_elf(&[PT_INTERP, PT_LOAD])).unwrap_err();
        assert!(err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn scripts_and_other_machines_are_refused() {
        assert!(check(b"#!/bin/sh\necho hi\n").unwrap_err().contains("not an ELF"));
        let mut arm = fake_elf(&[PT_LOAD]);
        arm[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert!(check(&arm).unwrap_err().contains("x86-64"));
    }

    #[test]
    fn truncated_program_headers_are_refused() {
        let mut elf = fake_elf(&[PT_LOAD]);
        elf.truncate(HEADER_LEN + 10);
        assert!(check(&elf).unwrap_err().contains("truncated"));
    }
}
