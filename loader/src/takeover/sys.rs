//! The system calls of the jump, and the only `unsafe` code for them:
//! `kexec_file_load(2)` (nix does not wrap it), plus the safe nix calls
//! around it (an in-memory file for the images, the final `reboot(2)`).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// A file that lives in memory only (`memfd_create`): the kernel and the
/// initramfs handed to `kexec_file_load`, which wants file descriptors.
pub fn memory_file(name: &str) -> Result<File, Errno> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC)?;
    Ok(File::from(fd))
}

/// Loads `kernel` and `initrd` with `cmdline` as the image the next
/// `reboot(RB_KEXEC)` starts (`kexec_file_load(2)`, flags 0). The running
/// kernel checks the image itself (and its signature where its policy
/// asks for one), so the errno is what the caller must explain.
pub fn kexec_file_load(kernel: BorrowedFd<'_>, initrd: BorrowedFd<'_>, cmdline: &str) -> Result<(), Errno> {
    let cmdline = CString::new(cmdline).map_err(|_| Errno::EINVAL)?;
    // The length counts the terminating NUL, as kexec-tools passes it.
    let len = cmdline.as_bytes_with_nul().len();
    // SAFETY: both descriptors are borrowed, so they stay open for the call;
    // `cmdline` is a NUL-terminated buffer of `len` bytes that outlives the
    // call and is only read by the kernel; the flags (0) ask for nothing
    // else. The syscall has no other memory effects on this process.
    let ret = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd.as_raw_fd(),
            len,
            cmdline.as_ptr(),
            0 as nix::libc::c_ulong,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Flushes every filesystem, then starts the loaded image. Returns only on
/// failure.
pub fn jump() -> Errno {
    nix::unistd::sync();
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_KEXEC) {
        Ok(never) => match never {},
        Err(errno) => errno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_memory_file_reads_back_what_was_written() {
        let mut file = memory_file("test").expect("memfd");
        file.write_all(b"initramfs").expect("write");
        file.rewind().expect("rewind");
        let mut back = String::new();
        file.read_to_string(&mut back).expect("read");
        assert_eq!(back, "initramfs");
    }

    /// Without CAP_SYS_BOOT, or with these bogus images, the kernel refuses;
    /// the call must report that as an errno, never load or crash.
    #[test]
    fn a_bogus_image_is_refused_with_an_errno() {
        let kernel = memory_file("kernel").expect("memfd");
        let initrd = memory_file("initrd").expect("memfd");
        let err = kexec_file_load(kernel.as_fd(), initrd.as_fd(), "console=ttyS0").expect_err("refused");
        assert!(
            matches!(
                err,
                Errno::ENOSYS | Errno::EPERM | Errno::ENOEXEC | Errno::EINVAL | Errno::ENOMEM
            ),
            "{err}"
        );
        assert_eq!(
            kexec_file_load(kernel.as_fd(), initrd.as_fd(), "a\0b"),
            Err(Errno::EINVAL)
        );
    }
}
