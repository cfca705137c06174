//! Turning engine events into something people and machines read.

pub mod callback;
pub mod console;
#[cfg(test)]
pub(crate) mod doc_examples;
pub mod json;

pub use console::Console;
pub use json::JsonLines;
