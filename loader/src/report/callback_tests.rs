use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

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
    let mut cb = Callback::start(
        format!("http://127.0.0.1:{port}/status"),
        CallbackOptions::default(),
        dir.path(),
    );
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

/// An endpoint that reads each request and then misbehaves with `answer`;
/// returns its URL.
fn misbehaving_endpoint(answer: fn(&mut TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                answer(&mut stream);
            });
        }
    });
    format!("http://127.0.0.1:{port}/status")
}

/// Queues `reports` progress reports and the result, then times `finish`
/// (on another thread, so a stalled sender fails the test instead of
/// hanging it).
fn time_finish(url: String, finish_within: Duration, reports: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let options = CallbackOptions {
        finish_within,
        ..CallbackOptions::default()
    };
    let mut cb = Callback::start(url, options, dir.path());
    cb.send("start", json!({ "stage": "starting" }));
    for done in 0..reports {
        cb.send("stage", json!({ "stage": format!("step {done}") }));
    }
    cb.send("result", json!({ "result": "installed" }));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        cb.finish();
        let _ = tx.send(started.elapsed());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("finish() held the reboot for more than a minute")
}

#[test]
fn an_endpoint_answering_endless_1xx_does_not_hold_the_reboot() {
    let url = misbehaving_endpoint(|stream| {
        while stream.write_all(b"HTTP/1.1 102 Processing\r\n\r\n").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let took = time_finish(url, Duration::from_secs(2), 0);
    assert!(took < Duration::from_secs(4), "finish took {took:?}");
}

#[test]
fn an_endpoint_trickling_its_answer_does_not_hold_the_reboot() {
    let url = misbehaving_endpoint(|stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ");
        while stream.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let took = time_finish(url, Duration::from_secs(2), 0);
    assert!(took < Duration::from_secs(4), "finish took {took:?}");
}

#[test]
fn a_full_queue_to_a_silent_endpoint_holds_the_reboot_only_for_the_report_timeout() {
    let url = misbehaving_endpoint(|_| std::thread::sleep(Duration::from_secs(3600)));
    let took = time_finish(url, Duration::from_secs(2), 40);
    assert!(took < Duration::from_secs(4), "finish took {took:?}");
}

#[test]
fn the_result_gets_in_even_when_the_queue_is_full() {
    let mut cb = Callback {
        shared: Some(Arc::new(Shared {
            state: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        })),
        finish_within: DEFAULT_FINISH_WITHIN,
        machine: json!(null),
        last_progress: None,
    };
    for n in 0..QUEUE {
        cb.send("stage", json!({ "n": n }));
    }
    cb.send("stage", json!({ "n": "dropped" }));
    cb.send("result", json!({ "result": "installed" }));
    let queue = cb.shared.as_ref().unwrap().lock();
    assert_eq!(queue.reports.len(), QUEUE + 1);
    assert_eq!(queue.reports.back().unwrap()["event"], "result");
}
