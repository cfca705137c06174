//! Reading a bundle: the streaming ZIP walker, `meta.conf` and its
//! signature.

pub mod blake2b;
pub mod conf;
pub mod crc32;
pub mod fwup_version;
pub mod manifest;
mod manifest_actions;
pub mod manifest_build;
mod manifest_calls;
mod manifest_task;
pub mod meta_conf;
pub mod meta_uuid;
pub mod open;
pub mod parse;
mod probe;
pub mod signature;
pub mod zip;
