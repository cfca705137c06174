//! Reading a bundle: the streaming ZIP walker, `meta.conf` and its
//! signature.

pub mod conf;
pub mod manifest;
pub mod parse;
