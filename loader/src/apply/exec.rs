//! The `--unsafe` actions: host commands and host paths.
//!
//! These are the only places the loader runs other programs, and only when
//! the operator passed `--unsafe` (validated before anything is written).

use std::fs::File;
use std::io::{self, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

/// `execute(CMD)` and `require-execute(CMD)`: `sh -c CMD`, success = exit 0.
pub fn run_shell(command: &str) -> io::Result<bool> {
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .status()?;
    Ok(status.success())
}

/// Where `path_write`/`pipe_write` send resource bytes.
pub enum HostSink {
    Path(File),
    Pipe {
        child: Child,
        stdin: Option<ChildStdin>,
        command: String,
        pos: u64,
    },
}

impl HostSink {
    pub fn path(path: &str) -> io::Result<Self> {
        Ok(HostSink::Path(File::create(path)?))
    }

    pub fn pipe(command: &str) -> io::Result<Self> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(HostSink::Pipe {
            child,
            stdin,
            command: command.to_string(),
            pos: 0,
        })
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            HostSink::Path(f) => f.write_all(data),
            HostSink::Pipe {
                stdin: Some(s), pos, ..
            } => {
                *pos += data.len() as u64;
                s.write_all(data)
            }
            HostSink::Pipe { .. } => Err(io::Error::other("pipe already closed")),
        }
    }

    /// Closes the sink; a pipe command must exit 0.
    pub fn finish(self) -> io::Result<()> {
        match self {
            HostSink::Path(f) => f.sync_all(),
            HostSink::Pipe {
                mut child,
                stdin,
                command,
                ..
            } => {
                drop(stdin);
                let status = child.wait()?;
                if status.success() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!("command `{command}` failed with {status}")))
                }
            }
        }
    }
}

impl HostSink {
    /// Positioned write: a file seeks; a pipe fills gaps with zeros.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        match self {
            HostSink::Path(f) => std::os::unix::fs::FileExt::write_all_at(f, data, offset),
            HostSink::Pipe { pos, .. } => {
                // A pipe cannot seek: the holes of a sparse resource become zeros.
                let gap = offset.saturating_sub(*pos);
                let zeros = vec![0u8; gap.min(1 << 20) as usize];
                let mut left = gap;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    self.write(&zeros[..n])?;
                    left -= n as u64;
                }
                self.write(data)
            }
        }
    }
}
