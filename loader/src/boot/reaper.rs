//! Reaping children, a PID 1 duty: every orphan in the system becomes our
//! child, and an exited child stays a zombie until we wait for it.
//!
//! A blanket `waitpid(-1)` would also steal the exit status of children
//! that other code spawned and waits for (`std::process::Child::wait`
//! would then fail with ECHILD). So the reaper only reaps zombies that are
//! not in a [`ChildRegistry`]: children spawned through
//! [`ChildRegistry::spawn`] are left to their owner. It finds zombies by
//! scanning `/proc/PID/stat` for state `Z` and our PID as parent.
//!
//! Every process but the kernel's threads descends from PID 1, and the
//! loader's boot flow starts none, so a PID 1 without children at its start
//! never has a zombie to reap: [`start_if_needed`] starts the reaper thread
//! only for a PID 1 that has children (the loader `exec`ed by another init
//! that left some running). Starting that thread cost 6-7 ms of a one-vCPU
//! boot (measured in a TCG guest), about 3% of a small install.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, PoisonError};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Children whose exit status belongs to the code that spawned them.
#[derive(Debug, Clone, Default)]
pub struct ChildRegistry(Arc<Mutex<HashSet<i32>>>);

impl ChildRegistry {
    /// Spawns `command` and registers the child in one step: the reaper
    /// holds the same lock while it sweeps, so it cannot reap the child
    /// between the spawn and the registration.
    pub fn spawn(&self, command: &mut Command) -> io::Result<Child> {
        let mut owned = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let child = command.spawn()?;
        owned.insert(i32::try_from(child.id()).unwrap_or(i32::MAX));
        Ok(child)
    }

    /// Forgets a child after its owner has waited for it.
    pub fn release(&self, pid: u32) {
        let mut owned = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        owned.remove(&i32::try_from(pid).unwrap_or(i32::MAX));
    }

    /// Reaps every zombie child not registered here.
    pub fn reap(&self, proc_root: &Path) -> Vec<(i32, WaitStatus)> {
        let owned = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        reap_zombies(proc_root, |pid| !owned.contains(&pid))
    }
}

/// PIDs of our children that have exited and wait to be reaped.
pub fn zombie_children(proc_root: &Path, parent: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut zombies: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            let stat = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).unwrap_or_default();
            parse_stat(&stat) == Some(('Z', parent))
        })
        .collect();
    zombies.sort_unstable();
    zombies
}

/// State and parent PID from `/proc/PID/stat`: `PID (COMM) S PPID …`. The
/// command name may contain spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Reaps the zombie children `may_reap` allows, without blocking.
pub fn reap_zombies(proc_root: &Path, may_reap: impl Fn(i32) -> bool) -> Vec<(i32, WaitStatus)> {
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    zombie_children(proc_root, me)
        .into_iter()
        .filter(|pid| may_reap(*pid))
        .filter_map(|pid| match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => None,
            Ok(status) => Some((pid, status)),
        })
        .collect()
}

/// Blocks SIGCHLD in the calling thread (as [`spawn_reaper`] does) and
/// starts the reaper only when this process has children now; `None` when
/// it has none. Code that spawns processes under PID 1 later must start the
/// reaper itself first ([`spawn_reaper`]).
pub fn start_if_needed(proc_root: PathBuf, registry: ChildRegistry) -> io::Result<Option<std::thread::JoinHandle<()>>> {
    block_sigchld()?;
    // Reaps one zombie if there is one: the registry is empty this early,
    // so it is one the reaper would have reaped.
    match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        Err(nix::errno::Errno::ECHILD) => Ok(None),
        _ => spawn_reaper(proc_root, registry).map(Some),
    }
}

fn block_sigchld() -> io::Result<SigSet> {
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    sigchld.thread_block().map_err(io::Error::from)?;
    Ok(sigchld)
}

/// Starts the reaper thread: it sleeps in `sigwait` for SIGCHLD and sweeps
/// on each one. SIGCHLD is blocked in the calling thread first, so call
/// this early in `main`, before other threads exist: they inherit the
/// mask, and the signal then only wakes the reaper. (Children spawned by
/// `std::process::Command` start with an empty mask.)
pub fn spawn_reaper(proc_root: PathBuf, registry: ChildRegistry) -> io::Result<std::thread::JoinHandle<()>> {
    let sigchld = block_sigchld()?;
    std::thread::Builder::new().name("reaper".into()).spawn(move || loop {
        if sigchld.wait().is_ok() {
            registry.reap(&proc_root);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const CHILD_ENV: &str = "LOADER_TEST_REAPER_CHILD";

    /// Runs in a child process of its own (see the next test): the test
    /// binary's other tests spawn children of their own.
    #[test]
    #[ignore = "helper, run in a child process by a_reaper_starts_only_for_a_process_with_children"]
    fn reaper_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let none = start_if_needed("/proc".into(), ChildRegistry::default()).expect("no children");
        assert!(none.is_none(), "a process without children needs no reaper");
        let mut sleeper = Command::new("sleep").arg("5").spawn().expect("spawn sleep");
        let started = start_if_needed("/proc".into(), ChildRegistry::default()).expect("a child");
        assert!(started.is_some(), "a process with a child gets a reaper");
        sleeper.kill().expect("kill sleep");
        // The reaper may have reaped it already (it is not registered).
        let _ = sleeper.wait();
    }

    #[test]
    fn a_reaper_starts_only_for_a_process_with_children() {
        let out = crate::boot::test_alone::only("boot::reaper::tests::reaper_child")
            .env(CHILD_ENV, "1")
            .output()
            .expect("run child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}");
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(parse_stat("42 (sh) Z 1 42 42 0 -1"), Some(('Z', 1)));
        assert_eq!(parse_stat("43 (a (weird) name) S 7 43 0"), Some(('S', 7)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn zombies_are_found_by_state_and_parent_in_a_fake_proc() {
        let proc_root = tempfile::tempdir().expect("temp dir");
        for (pid, stat) in [
            ("10", "10 (a) Z 1 0"),
            ("11", "11 (b) S 1 0"),
            ("12", "12 (c) Z 5 0"),
            ("13", "13 (d d) Z 1 0"),
        ] {
            fs::create_dir(proc_root.path().join(pid)).expect("mkdir");
            fs::write(proc_root.path().join(pid).join("stat"), stat).expect("write");
        }
        fs::create_dir(proc_root.path().join("self")).expect("non-numeric entries are ignored");
        assert_eq!(zombie_children(proc_root.path(), 1), [10, 13]);
        assert_eq!(zombie_children(proc_root.path(), 5), [12]);
    }

    fn wait_for_zombie(pid: i32) -> bool {
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if zombie_children(Path::new("/proc"), me).contains(&pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn an_unregistered_zombie_is_reaped_and_a_registered_one_is_left_to_its_owner() {
        let registry = ChildRegistry::default();
        let mut owned = registry
            .spawn(Command::new("sh").args(["-c", "exit 4"]))
            .expect("spawn sh");
        let mut orphan = Command::new("sh").args(["-c", "exit 3"]).spawn().expect("spawn sh");
        let (owned_pid, orphan_pid) = (owned.id() as i32, orphan.id() as i32);
        assert!(
            wait_for_zombie(orphan_pid) && wait_for_zombie(owned_pid),
            "children exit"
        );

        // Only these two children are considered: other tests' children run
        // in this process too.
        let registry_view = registry.0.lock().expect("lock").clone();
        let reaped = reap_zombies(Path::new("/proc"), |pid| {
            (pid == orphan_pid || pid == owned_pid) && !registry_view.contains(&pid)
        });
        assert_eq!(reaped, [(orphan_pid, WaitStatus::Exited(Pid::from_raw(orphan_pid), 3))]);
        assert!(orphan.try_wait().is_err(), "already reaped: nothing left to wait for");
        assert_eq!(owned.wait().expect("owner can still wait").code(), Some(4));
        registry.release(owned.id());
        assert!(registry.0.lock().expect("lock").is_empty());
    }
}
