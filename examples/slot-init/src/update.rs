//! `POST /update`: the example's way to update itself in place, what
//! `mix firmware.push` over ssh does for Nerves devices, without ssh.
//!
//! The request body is the bundle URL; the request must carry
//! `Authorization: Bearer TOKEN` with the token provisioned on the data
//! partition (`/data/update-token`). The update itself is the loader's:
//!
//! ```text
//! /usr/bin/loader apply URL --device auto --task upgrade \
//!     --public-key /data/update.pub [--ca /data/update-ca.pem] --reboot --progress plain
//! ```
//!
//! It writes the inactive slot while this one runs, refuses any write into
//! the mounted root and data partitions, switches the slot and reboots into
//! it. Its lines go to the console. Without a provisioned token and public
//! key updates are off: a signed bundle is the only thing that can replace
//! this system. (A real system keeps the key in its read-only root
//! filesystem; the example keeps it next to the token so the tests can
//! provision both.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the update needs, where the example keeps it.
#[derive(Debug, Clone)]
pub struct UpdateFiles {
    pub loader: PathBuf,
    pub token: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl UpdateFiles {
    pub fn at(data_dir: &Path) -> UpdateFiles {
        UpdateFiles {
            loader: "/usr/bin/loader".into(),
            token: data_dir.join("update-token"),
            key: data_dir.join("update.pub"),
            ca: data_dir.join("update-ca.pem"),
        }
    }
}

/// An answer to `POST /update`: HTTP status and a line of text.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: &'static str,
    pub message: String,
}

fn answer(status: &'static str, message: impl Into<String>) -> Answer {
    Answer {
        status,
        message: message.into(),
    }
}

/// One update at a time: a second request while one runs is refused.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Checks the request and starts the update; `say` prints console lines.
pub fn handle(head: &str, body: &str, files: &UpdateFiles, say: impl Fn(String) + Send + 'static) -> Answer {
    let Ok(token) = std::fs::read_to_string(&files.token) else {
        return answer(
            "403 Forbidden",
            format!("updates are off: no {}", files.token.display()),
        );
    };
    if !authorized(head, token.trim()) {
        return answer("401 Unauthorized", "wrong or missing Authorization: Bearer token");
    }
    if !files.key.is_file() {
        return answer(
            "403 Forbidden",
            format!("updates are off: no public key at {}", files.key.display()),
        );
    }
    let url = body.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(char::is_whitespace) {
        return answer("400 Bad Request", "the body must be the bundle's http(s):// URL");
    }
    if RUNNING.swap(true, Ordering::SeqCst) {
        return answer("409 Conflict", "an update is already running");
    }
    let args = loader_args(url, files);
    say(format!("update: {} {}", files.loader.display(), args.join(" ")));
    match Command::new(&files.loader).args(&args).spawn() {
        Ok(mut child) => {
            // The loader reboots when it succeeds; this thread reports the rest.
            std::thread::spawn(move || {
                let status = child.wait();
                RUNNING.store(false, Ordering::SeqCst);
                say(format!("update: the loader ended without rebooting: {status:?}"));
            });
            answer("202 Accepted", format!("updating from {url}; progress on the console"))
        }
        Err(error) => {
            RUNNING.store(false, Ordering::SeqCst);
            answer(
                "500 Internal Server Error",
                format!("starting {}: {error}", files.loader.display()),
            )
        }
    }
}

/// The loader's arguments for an in-place update from `url`.
pub fn loader_args(url: &str, files: &UpdateFiles) -> Vec<String> {
    let mut args: Vec<String> = ["apply", url, "--device", "auto", "--task", "upgrade", "--public-key"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(files.key.display().to_string());
    if files.ca.is_file() {
        args.extend(["--ca".to_string(), files.ca.display().to_string()]);
    }
    args.extend(["--reboot", "--progress", "plain"].iter().map(|s| s.to_string()));
    args
}

/// Whether the head has `Authorization: Bearer <token>` (compared in
/// constant time; an empty token never matches).
pub fn authorized(head: &str, token: &str) -> bool {
    let given = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| value.trim().strip_prefix("Bearer ").map(str::trim))
            .flatten()
    });
    match given {
        Some(given) if !token.is_empty() && given.len() == token.len() => {
            given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let head = "POST /update HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n";
        assert!(authorized(head, "s3cret"));
        assert!(!authorized(head, "s3cre"));
        assert!(!authorized(head, "s3cretX"));
        assert!(!authorized("POST /update HTTP/1.1\r\n\r\n", "s3cret"));
        assert!(!authorized("POST / HTTP/1.1\r\nauthorization: Bearer \r\n", ""));
        assert!(authorized(
            "POST / HTTP/1.1\r\nauthorization:   Bearer s3cret  \r\n",
            "s3cret"
        ));
    }

    #[test]
    fn updates_are_off_until_provisioned_and_need_a_url() {
        let dir = tempfile::tempdir().unwrap();
        let files = UpdateFiles {
            loader: dir.path().join("no-loader"),
            ..UpdateFiles::at(dir.path())
        };
        let head = "POST /update HTTP/1.1\r\nAuthorization: Bearer t0ken\r\n\r\n";
        let url = "https://10.0.2.2/v2.fw";
        assert_eq!(handle(head, url, &files, |_| {}).status, "403 Forbidden");
        std::fs::write(&files.token, "t0ken\n").unwrap();
        assert_eq!(
            handle("POST /update HTTP/1.1\r\n\r\n", url, &files, |_| {}).status,
            "401 Unauthorized"
        );
        let no_key = handle(head, url, &files, |_| {});
        assert!(no_key.message.contains("no public key"), "{no_key:?}");
        std::fs::write(&files.key, "key").unwrap();
        assert_eq!(handle(head, "ftp://x", &files, |_| {}).status, "400 Bad Request");
        let failed = handle(head, url, &files, |_| {});
        assert_eq!(failed.status, "500 Internal Server Error", "{failed:?}");
        assert!(
            !RUNNING.load(Ordering::SeqCst),
            "a failed start does not block the next update"
        );
    }

    #[test]
    fn the_loader_updates_the_running_disk_in_place_and_reboots() {
        let dir = tempfile::tempdir().unwrap();
        let files = UpdateFiles::at(dir.path());
        let args = loader_args("https://h/v2.fw", &files).join(" ");
        let key = files.key.display();
        assert_eq!(
            args,
            format!("apply https://h/v2.fw --device auto --task upgrade --public-key {key} --reboot --progress plain")
        );
        std::fs::write(&files.ca, "pem").unwrap();
        assert!(loader_args("https://h/v2.fw", &files).join(" ").contains("--ca "));
    }
}
