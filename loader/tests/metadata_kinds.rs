//! `loader.metadata=` against loopback imitations of the cloud metadata
//! services, each refusing requests the way the real one does when a
//! header is missing: EC2's IMDSv2 (token from a PUT first), Google Cloud
//! (`Metadata-Flavor: Google`), Azure (`Metadata: true`, `api-version`),
//! and nested JSON such as Vultr's `/v1.json` (flattened to dotted names).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use loader::source::metadata::{fetch, MetadataKind, MetadataOptions};
use loader::source::ProxySetting;

/// One request as the imitation saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
}

type Answer = (u16, Vec<(&'static str, String)>, String);

/// Serves `answer` on 127.0.0.1; returns the base URL and the requests.
fn imitation(answer: fn(&Seen) -> Answer) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let (method, target) = (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned());
            let mut headers = BTreeMap::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let Some((name, value)) = line.trim_end().split_once(':') else {
                    break;
                };
                headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
            }
            let length: usize = headers.get("content-length").map_or(0, |v| v.parse().unwrap());
            reader.read_exact(&mut vec![0; length]).unwrap();
            let request = Seen {
                method,
                target,
                headers,
            };
            let (status, extra, body) = answer(&request);
            log.lock().unwrap().push(request);
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in extra {
                head += &format!("{name}: {value}\r\n");
            }
            let _ = stream.write_all(format!("{head}\r\n{body}").as_bytes());
        }
    });
    (base, seen)
}

fn options() -> MetadataOptions {
    MetadataOptions {
        proxy: ProxySetting::Direct,
        ..MetadataOptions::default()
    }
}

fn ok(body: &str) -> Answer {
    (200, Vec::new(), body.to_owned())
}

fn ec2(req: &Seen) -> Answer {
    const TOKEN: &str = "AQAEAtoken==";
    if req.method == "PUT" {
        return match (
            req.target.as_str(),
            req.headers.get("x-aws-ec2-metadata-token-ttl-seconds"),
        ) {
            ("/latest/api/token", Some(_)) => ok(TOKEN),
            _ => (400, Vec::new(), String::new()),
        };
    }
    if req.headers.get("x-aws-ec2-metadata-token").map(String::as_str) != Some(TOKEN) {
        return (401, Vec::new(), String::new());
    }
    match req.target.as_str() {
        "/latest/meta-data/" => ok("instance-id\nplacement/\n"),
        "/latest/meta-data/instance-id" => ok("i-0abc123"),
        "/latest/meta-data/placement/" => ok("region\navailability-zone"),
        "/latest/meta-data/placement/region" => ok("eu-west-1"),
        "/latest/meta-data/placement/availability-zone" => ok("eu-west-1a"),
        "/latest/dynamic/instance-identity/document" => {
            ok(r#"{"instanceId":"i-0abc123","region":"eu-west-1","privateIp":"172.31.5.6"}"#)
        }
        _ => (404, Vec::new(), String::new()),
    }
}

#[test]
fn ec2_imdsv2_takes_a_token_first_then_documents_or_a_walked_tree() {
    let (base, seen) = imitation(ec2);
    let found = fetch(&format!("{base}/latest/dynamic/instance-identity/document"), &options()).unwrap();
    assert_eq!(found.kind, MetadataKind::Ec2);
    assert_eq!(found.vars["instanceId"], "i-0abc123");
    assert_eq!(found.vars["privateIp"], "172.31.5.6");
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests[0].method, "PUT", "{requests:?}");
    assert_eq!(requests[0].headers["x-aws-ec2-metadata-token-ttl-seconds"], "300");

    let tree = fetch(&format!("{base}/latest/meta-data/"), &options()).unwrap();
    let expected = [
        ("instance-id", "i-0abc123"),
        ("placement.availability-zone", "eu-west-1a"),
        ("placement.region", "eu-west-1"),
    ];
    assert_eq!(
        tree.vars,
        expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    );
}

fn gcp(req: &Seen) -> Answer {
    if req.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
        return (403, Vec::new(), "Missing Metadata-Flavor:Google header.".into());
    }
    if req.target != "/computeMetadata/v1/instance/?recursive=true" {
        return (404, Vec::new(), String::new());
    }
    let body = r#"{"id":4520031799277581759,"hostname":"vm-1.c.proj.internal",
        "networkInterfaces":[{"ip":"10.128.0.2"}],"attributes":{"serial":"GC-1"}}"#;
    (200, vec![("Metadata-Flavor", "Google".into())], body.into())
}

#[test]
fn google_cloud_sends_its_flavor_header_and_asks_recursively() {
    let (base, _) = imitation(gcp);
    let found = fetch(&format!("{base}/computeMetadata/v1/instance/"), &options()).unwrap();
    assert_eq!(found.kind, MetadataKind::Gcp);
    assert_eq!(found.vars["hostname"], "vm-1.c.proj.internal");
    assert_eq!(found.vars["networkInterfaces.0.ip"], "10.128.0.2");
    assert_eq!(found.vars["attributes.serial"], "GC-1");
    assert_eq!(found.vars["id"], "4520031799277581759");
}

#[test]
fn an_answer_without_the_google_flavor_is_not_taken_for_google_metadata() {
    let (base, _) = imitation(|_| ok(r#"{"hostname":"impostor"}"#));
    let err = fetch(&format!("{base}/computeMetadata/v1/instance/"), &options()).unwrap_err();
    assert!(err.contains("not a Google Cloud metadata server"), "{err}");
}

fn azure(req: &Seen) -> Answer {
    if req.headers.get("metadata").map(String::as_str) != Some("true") {
        return (
            400,
            Vec::new(),
            r#"{"error":"Bad request. Required metadata header not specified"}"#.into(),
        );
    }
    if req.target != "/metadata/instance?api-version=2021-02-01" {
        return (
            400,
            Vec::new(),
            r#"{"error":"Bad request. api-version was not specified"}"#.into(),
        );
    }
    ok(r#"{"compute":{"name":"az-1","vmId":"02aab8a4"},
        "network":{"interface":[{"ipv4":{"ipAddress":[{"privateIpAddress":"10.0.0.4"}]}}]}}"#)
}

#[test]
fn azure_sends_metadata_true_and_an_api_version() {
    let (base, _) = imitation(azure);
    let found = fetch(&format!("{base}/metadata/instance"), &options()).unwrap();
    assert_eq!(found.kind, MetadataKind::Azure);
    assert_eq!(found.vars["compute.name"], "az-1");
    assert_eq!(
        found.vars["network.interface.0.ipv4.ipAddress.0.privateIpAddress"],
        "10.0.0.4"
    );
}

#[test]
fn vultr_style_nested_json_is_flattened_and_a_flat_object_stays_generic() {
    let (base, seen) = imitation(|req| match req.target.as_str() {
        "/v1.json" => ok(r#"{"hostname":"vultr-1","interfaces":[{"ipv4":{"address":"203.0.113.5"}}]}"#),
        _ => ok(r#"{"NERVES_SERIAL_NUMBER":"LT-1","nested":{"x":1}}"#),
    });
    let found = fetch(&format!("{base}/v1.json"), &options()).unwrap();
    assert_eq!(found.kind, MetadataKind::Json);
    assert_eq!(found.vars["hostname"], "vultr-1");
    assert_eq!(found.vars["interfaces.0.ipv4.address"], "203.0.113.5");

    let generic = fetch(&format!("{base}/meta"), &options()).unwrap();
    assert_eq!(generic.kind, MetadataKind::Generic);
    assert_eq!(generic.vars.len(), 1, "{:?}", generic.vars);
    let forced = MetadataOptions {
        kind: Some(MetadataKind::Json),
        ..options()
    };
    assert_eq!(fetch(&format!("{base}/meta"), &forced).unwrap().vars["nested.x"], "1");
    assert!(seen.lock().unwrap().iter().all(|r| r.method == "GET"));
}

#[test]
fn plain_http_to_a_routable_address_is_refused_naming_the_key_that_allows_it() {
    let err = fetch("http://192.0.2.1:9/meta", &options()).unwrap_err();
    assert!(err.contains("192.0.2.1 is neither"), "{err}");
    assert!(err.contains("loader.metadata_insecure=1"), "{err}");
    // A name is resolved and checked too: localhost is loopback.
    let (base, _) = imitation(|_| ok(r#"{"A":"1"}"#));
    let by_name = base.replace("127.0.0.1", "localhost");
    assert_eq!(fetch(&format!("{by_name}/meta"), &options()).unwrap().vars["A"], "1");
}
