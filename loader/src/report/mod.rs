//! Turning engine events into something people and machines read.

pub mod callback;
pub mod console;
pub mod json;

pub use console::Console;
pub use json::JsonLines;
