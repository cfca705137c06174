use super::*;
use crate::bundle::manifest::{Action, Requirement};
use crate::bundle::parse::parse_conf;

const HASH: &str = "9b7a4e69c18a9a516ac56a0f74a26b28bf04256ae7d6c4484533a0609f1a569f";

/// A minimal valid meta.conf with one resource, one mbr, one env, plus
/// `task_body` inside `task "t"`.
fn conf(task_body: &str) -> String {
    format!(
        "file-resource \"r.bin\" {{\nlength=1000\nblake2b-256={HASH}\n}}\nmbr \"m\" {{ }}\n\
         uboot-environment \"env\" {{ block-offset=256 }}\ntask \"t\" {{\n{task_body}\n}}\n"
    )
}

fn build(text: &str) -> Result<Manifest, ManifestError> {
    match parse_conf(text, &|_| None) {
        Ok(root) => Manifest::from_conf(&root),
        Err(e) => panic!("parse: {e}\n{text}"),
    }
}

fn ok(text: &str) -> Manifest {
    build(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn fails(text: &str) -> ManifestError {
    match build(text) {
        Ok(m) => panic!("expected an error, built {m:?}"),
        Err(e) => e,
    }
}

fn init_actions(funlist: &str) -> Result<Vec<Action>, ManifestError> {
    build(&conf(&format!("on-init {{ funlist={{{funlist}}} }}"))).map(|m| m.tasks[0].on_init.clone())
}

fn resource_actions(funlist: &str) -> Result<Vec<Action>, ManifestError> {
    build(&conf(&format!("on-resource \"r.bin\" {{ funlist={{{funlist}}} }}")))
        .map(|m| m.tasks[0].on_resource[0].actions.clone())
}

fn problem(e: ManifestError) -> String {
    match e {
        ManifestError::BadAction { problem, .. } | ManifestError::BadRequirement { problem, .. } => problem,
        other => panic!("not an argument problem: {other}"),
    }
}

#[test]
fn unknown_action_names_it_the_task_and_the_handler() {
    let e = init_actions("2,fat_frob,1").expect_err("unknown action");
    assert_eq!(
        e,
        ManifestError::UnknownAction {
            task: "t".into(),
            handler: "on-init".into(),
            action: "fat_frob".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "meta.conf: task \"t\", on-init: unknown action `fat_frob`"
    );
    let e = resource_actions("2,ubi_volume_write,x").expect_err("unknown action");
    assert!(
        e.to_string()
            .contains("on-resource \"r.bin\": unknown action `ubi_volume_write`"),
        "{e}"
    );
}

#[test]
fn unknown_requirement_and_sections_are_errors() {
    let e = fails(&conf("reqlist={2,require-moon-phase,full}"));
    assert_eq!(
        e,
        ManifestError::UnknownRequirement {
            task: "t".into(),
            name: "require-moon-phase".into()
        }
    );
    let e = fails(&conf("on-boot { funlist={2,info,x} }"));
    assert_eq!(
        e,
        ManifestError::UnknownSection {
            parent: "task \"t\"".into(),
            kind: "on-boot".into()
        }
    );
    let e = fails("frobnicator \"x\" { }\n");
    assert_eq!(
        e,
        ManifestError::UnknownSection {
            parent: "meta.conf".into(),
            kind: "frobnicator".into()
        }
    );
    let e = fails(&conf("on-init { nested { } }"));
    assert!(
        matches!(e, ManifestError::UnknownSection { ref kind, .. } if kind == "nested"),
        "{e}"
    );
}

#[test]
fn arity_and_argument_types_follow_fwup() {
    assert_eq!(
        init_actions("4,raw_memset,8,2,255"),
        Ok(vec![Action::RawMemset {
            block_offset: 8,
            block_count: 2,
            value: 255
        }])
    );
    assert!(problem(init_actions("4,raw_memset,8,2,256").expect_err("256")).contains("between 0 and 255"));
    assert!(problem(init_actions("4,raw_memset,8,0,1").expect_err("count 0")).contains("positive"));
    assert!(problem(init_actions("3,raw_memset,8,2").expect_err("3 args")).contains("(got 2 arguments)"));
    assert!(problem(init_actions("3,uboot_setenv,env,k").expect_err("setenv")).contains("variable name and value"));
    assert!(problem(init_actions("3,fat_mkdir,-1,/x").expect_err("negative")).contains("non-negative"));
    assert!(problem(init_actions("3,fat_mkdir,12abc,/x").expect_err("junk")).contains("`12abc`"));
    assert!(problem(init_actions("4,fat_attrib,0,f,RX").expect_err("attrib")).contains("R, H, and S"));
    assert!(problem(init_actions("3,trim,0,0").expect_err("trim 0")).contains("positive"));
    assert_eq!(
        init_actions("3,trim,0x10,010"),
        Ok(vec![Action::Trim {
            block_offset: 16,
            block_count: 8
        }])
    );
}

#[test]
fn references_must_exist() {
    assert!(problem(init_actions("2,mbr_write,nope").expect_err("mbr")).contains("mbr \"nope\""));
    assert!(problem(init_actions("2,gpt_write,m").expect_err("gpt")).contains("gpt \"m\""));
    assert!(problem(init_actions("2,uboot_clearenv,nope").expect_err("env")).contains("uboot-environment"));
    let e = fails(&conf("reqlist={4,require-uboot-variable,nope,k,v}"));
    assert!(matches!(e, ManifestError::BadRequirement { .. }), "{e}");
    let e = fails(&conf("on-resource \"missing.bin\" { }"));
    assert_eq!(
        e,
        ManifestError::UnknownResource {
            task: "t".into(),
            resource: "missing.bin".into()
        }
    );
}

#[test]
fn data_actions_only_in_on_resource() {
    for f in [
        "2,raw_write,0",
        "3,fat_write,0,x",
        "2,path_write,/tmp/x",
        "2,pipe_write,cat",
    ] {
        let e = init_actions(f).expect_err(f);
        assert!(problem(e).contains("only usable in on-resource"), "{f}");
    }
}

#[test]
fn fat_write_without_a_name_uses_the_resource_name() {
    assert_eq!(
        resource_actions("2,fat_write,0"),
        Ok(vec![Action::FatWrite {
            block_offset: 0,
            path: "r.bin".into()
        }])
    );
}

#[test]
fn raw_write_cipher_options_are_checked_and_kept() {
    assert_eq!(
        resource_actions("4,raw_write,0,\"cipher=aes-cbc-plain\",\"secret=00ff\""),
        Ok(vec![Action::RawWrite {
            block_offset: 0,
            cipher: Some("aes-cbc-plain".into())
        }])
    );
    assert!(problem(resource_actions("3,raw_write,0,\"cipher=x\"").expect_err("no secret")).contains("both"));
    assert!(problem(resource_actions("3,raw_write,0,\"speed=9\"").expect_err("unknown")).contains("speed=9"));
    assert!(problem(resource_actions("3,raw_write,0,plain").expect_err("no =")).contains("'='"));
    assert!(problem(resource_actions("1,raw_write").expect_err("no offset")).contains("block offset"));
}

#[test]
fn malformed_funlists() {
    assert!(problem(init_actions("0,info").expect_err("argc 0")).contains("argument count"));
    assert!(problem(init_actions("11,info,1,2,3,4,5,6,7,8,9,10").expect_err("argc 11")).contains("argument count"));
    assert!(problem(init_actions("3,info,x").expect_err("short")).contains("ends inside `info`"));
    assert!(problem(init_actions("info,x").expect_err("no argc")).contains("`info`"));
}

#[test]
fn requirements_and_deprecated_task_options() {
    let m = ok(&conf(
        "require-partition1-offset=63\nrequire-unmounted-destination=true\nverify-on-the-fly=false\n\
         reqlist={3,require-partition-offset,3,2048,3,require-path-at-offset,/,1024,2,require-execute,true}",
    ));
    assert_eq!(
        m.tasks[0].requirements,
        vec![
            Requirement::PartitionOffset {
                partition: 1,
                block_offset: 63
            },
            Requirement::PartitionOffset {
                partition: 3,
                block_offset: 2048
            },
            Requirement::PathAtOffset {
                path: "/".into(),
                block_offset: 1024
            },
            Requirement::Execute { command: "true".into() },
        ]
    );
    assert!(ok(&conf("require-partition1-offset=-1")).tasks[0]
        .requirements
        .is_empty());
    let e = fails(&conf("reqlist={3,require-partition-offset,4,0}"));
    assert!(e.to_string().contains("0, 1, 2, or 3"), "{e}");
    let e = fails(&conf("require-unmounted-destination=maybe"));
    assert!(matches!(e, ManifestError::Value(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("meta.conf: task \"t\": option `require-unmounted-destination`"),
        "{msg}"
    );
    let msg = fails("meta-version={1,2}\n").to_string();
    assert!(
        msg.starts_with("meta.conf: option `meta-version`: expected a single"),
        "{msg}"
    );
}

#[test]
fn resources_lengths_and_hashes() {
    let res = |body: &str| format!("file-resource \"x\" {{\n{body}\n}}\n");
    let m = ok(&res(&format!(
        "length={{0b100,0x10,010}}\nblake2b-256={HASH}\nhost-path=a\nassert-size-lte=9"
    )));
    assert_eq!(m.resources[0].sparse_map, [4, 16, 8]);
    assert_eq!(m.resources[0].blake2b_256[..2], [0x9b, 0x7a]);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(ok(&res(&format!("blake2b-256={HASH}"))).resources[0].sparse_map, [0]);
    for bad in ["length=-5", "length={1,x}", "length={9223372036854775807,1}"] {
        let e = fails(&res(&format!("{bad}\nblake2b-256={HASH}")));
        assert!(matches!(e, ManifestError::Resource { .. }), "{bad}: {e}");
    }
    let e = fails(&res("length=1"));
    assert!(e.to_string().contains("no blake2b-256"), "{e}");
    let e = fails(&res(&format!("length=1\nblake2b-256={}", HASH.to_uppercase())));
    assert!(e.to_string().contains("lower-case"), "{e}");
    let e = fails(&res("length=1\nblake2b-256=abcd"));
    assert!(e.to_string().contains("not 64"), "{e}");
}

#[test]
fn unknown_options_become_warnings() {
    let m = ok(&format!(
        "meta-colour=blue\n{}",
        conf("flavour=x\non-init { colour=1 }")
    ));
    assert_eq!(
        m.warnings,
        [
            "meta.conf: unknown option `meta-colour` ignored",
            "task \"t\": unknown option `flavour` ignored",
            "task \"t\", on-init: unknown option `colour` ignored",
        ]
    );
}

#[test]
fn names_are_required_and_unique() {
    assert!(matches!(fails("task { }\n"), ManifestError::MissingTitle { .. }));
    let e = fails(&conf("on-init \"x\" { }"));
    assert!(matches!(e, ManifestError::UnexpectedTitle { .. }), "{e}");
    // Hand-built trees can hold duplicates the parser would refuse.
    let mut root = Section::default();
    for _ in 0..2 {
        root.sections.push(Section {
            kind: "task".into(),
            title: Some("a".into()),
            ..Section::default()
        });
    }
    assert!(matches!(
        Manifest::from_conf(&root),
        Err(ManifestError::Duplicate { .. })
    ));
}

#[test]
fn newer_fwup_requirement_is_refused() {
    let e = fails("require-fwup-version=\"2.0.0\"\n");
    let msg = e.to_string();
    assert!(msg.contains("2.0.0") && msg.contains("1.16.0"), "{msg}");
    assert_eq!(
        ok("require-fwup-version=1.12.0\n").require_fwup_version.as_deref(),
        Some("1.12.0")
    );
}
