//! `loader.report=URL`: JSON status POSTs to a fleet operator's endpoint —
//! at start, on every stage change, every 10 s with progress, and at the
//! end with the result.
//!
//! Sent from a background thread through a small queue: a slow or dead
//! endpoint never holds up an install (reports are dropped when the queue
//! is full), and a report that fails is retried twice, then forgotten.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::source::post::post_json;
use crate::source::ExtraRoot;

const QUEUE: usize = 32;
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Callback {
    tx: Option<SyncSender<Value>>,
    worker: Option<JoinHandle<()>>,
    machine: Value,
    last_progress: Option<Instant>,
}

impl Callback {
    pub fn start(url: String, extra_roots: Vec<ExtraRoot>, sys: &Path) -> Callback {
        let (tx, rx) = sync_channel::<Value>(QUEUE);
        let worker = std::thread::Builder::new()
            .name("status-callback".into())
            .spawn(move || {
                for report in rx {
                    let body = report.to_string();
                    for attempt in 0..3 {
                        match post_json(&url, &body, &extra_roots, TIMEOUT) {
                            Ok(status) if status < 500 => break,
                            Ok(_) | Err(_) if attempt < 2 => std::thread::sleep(Duration::from_secs(1)),
                            Ok(status) => println!("loader: status callback answered {status}; report dropped"),
                            Err(e) => println!("loader: status callback failed: {e}; report dropped"),
                        }
                    }
                }
            })
            .ok();
        Callback {
            tx: worker.as_ref().map(|_| tx),
            worker,
            machine: machine_identity(sys),
            last_progress: None,
        }
    }

    /// Queues one report; never blocks.
    pub fn send(&mut self, event: &str, mut fields: Value) {
        if let Value::Object(map) = &mut fields {
            map.insert("event".into(), json!(event));
            map.insert("machine".into(), self.machine.clone());
        }
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(fields);
        }
    }

    /// Progress, at most every 10 s.
    pub fn progress(&mut self, done: u64, total: u64) {
        let due = self.last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if due {
            self.last_progress = Some(Instant::now());
            self.send("progress", json!({ "done": done, "total": total }));
        }
    }

    /// Sends what is queued (bounded by the per-report timeouts) and stops.
    pub fn finish(mut self) {
        drop(self.tx.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// MAC addresses and DMI product/serial, so the operator knows which
/// machine is talking. `sys` is `/sys` (a temp tree in tests).
pub fn machine_identity(sys: &Path) -> Value {
    let mut macs = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(sys.join("class/net")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name == "lo" {
                continue;
            }
            if let Ok(mac) = std::fs::read_to_string(entry.path().join("address")) {
                macs.insert(name, mac.trim().to_string());
            }
        }
    }
    let dmi = |f: &str| {
        std::fs::read_to_string(sys.join("class/dmi/id").join(f))
            .ok()
            .map(|s| s.trim().to_string())
    };
    json!({
        "macs": macs,
        "vendor": dmi("sys_vendor"),
        "product": dmi("product_name"),
        "serial": dmi("product_serial"),
        "uuid": dmi("product_uuid"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    #[test]
    fn identity_reads_macs_and_dmi_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("class/net/eth0")).unwrap();
        std::fs::create_dir_all(dir.path().join("class/net/lo")).unwrap();
        std::fs::create_dir_all(dir.path().join("class/dmi/id")).unwrap();
        std::fs::write(dir.path().join("class/net/eth0/address"), "52:54:00:12:34:56\n").unwrap();
        std::fs::write(dir.path().join("class/net/lo/address"), "00:00:00:00:00:00\n").unwrap();
        std::fs::write(dir.path().join("class/dmi/id/product_serial"), "SN-1\n").unwrap();
        let id = machine_identity(dir.path());
        assert_eq!(id["macs"]["eth0"], "52:54:00:12:34:56");
        assert!(id["macs"].get("lo").is_none());
        assert_eq!(id["serial"], "SN-1");
    }

    #[test]
    fn reports_reach_a_loopback_endpoint_in_order() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for stream in listener.incoming().take(2) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                bodies.push(String::from_utf8(body).unwrap());
                stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                    .unwrap();
            }
            bodies
        });
        let dir = tempfile::tempdir().unwrap();
        let mut cb = Callback::start(format!("http://127.0.0.1:{port}/status"), Vec::new(), dir.path());
        cb.send("start", json!({ "stage": "starting" }));
        cb.send("result", json!({ "result": "failed", "class": "corrupt" }));
        cb.finish();
        let bodies = server.join().unwrap();
        let first: Value = serde_json::from_str(&bodies[0]).unwrap();
        let last: Value = serde_json::from_str(&bodies[1]).unwrap();
        assert_eq!(first["event"], "start");
        assert_eq!(last["result"], "failed");
        assert_eq!(last["class"], "corrupt");
    }
}
