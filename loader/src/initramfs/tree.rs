//! The initramfs contents as a sorted tree, written out in one deterministic order.
//!
//! Entries are kept by path in byte order, which puts every directory before
//! what it contains (a parent path is a prefix of its children's) and makes
//! the archive independent of the order things were added in. Missing parent
//! directories are created (mode 0755) so the kernel never has to guess.

use std::collections::BTreeMap;
use std::io::Write;

use super::cpio::NewcWriter;
use super::InitramfsError;

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Directory { permissions: u32 },
    File { permissions: u32, contents: Vec<u8> },
    CharDevice { permissions: u32, major: u32, minor: u32 },
    Symlink { target: String },
}

/// Archive paths (`etc/loader.conf`, no leading `/`) to nodes.
#[derive(Debug, Default, Clone)]
pub struct FileTree {
    nodes: BTreeMap<String, Node>,
}

impl FileTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory; adding one that already exists only sets its permissions.
    pub fn directory(&mut self, path: &str, permissions: u32) -> Result<(), InitramfsError> {
        self.insert(path, Node::Directory { permissions })
    }

    pub fn file(&mut self, path: &str, permissions: u32, contents: Vec<u8>) -> Result<(), InitramfsError> {
        self.insert(path, Node::File { permissions, contents })
    }

    pub fn char_device(&mut self, path: &str, permissions: u32, major: u32, minor: u32) -> Result<(), InitramfsError> {
        self.insert(
            path,
            Node::CharDevice {
                permissions,
                major,
                minor,
            },
        )
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), InitramfsError> {
        self.insert(
            path,
            Node::Symlink {
                target: target.to_owned(),
            },
        )
    }

    /// The archive paths in writing order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The uncompressed `newc` archive, every entry stamped with `mtime`.
    pub fn to_cpio(&self, mtime: u32) -> Result<Vec<u8>, InitramfsError> {
        let mut writer = NewcWriter::new(Vec::new(), mtime);
        self.write_entries(&mut writer)?;
        writer.finish()
    }

    fn write_entries<W: Write>(&self, writer: &mut NewcWriter<W>) -> Result<(), InitramfsError> {
        for (path, node) in &self.nodes {
            match node {
                Node::Directory { permissions } => writer.directory(path, *permissions)?,
                Node::File { permissions, contents } => writer.file(path, *permissions, contents)?,
                Node::CharDevice {
                    permissions,
                    major,
                    minor,
                } => writer.char_device(path, *permissions, *major, *minor)?,
                Node::Symlink { target } => writer.symlink(path, target)?,
            }
        }
        Ok(())
    }

    fn insert(&mut self, path: &str, node: Node) -> Result<(), InitramfsError> {
        let path = normalize(path)?;
        let mut parent = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for component in &components[..components.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            match self.nodes.get(&parent) {
                None => {
                    self.nodes
                        .insert(parent.clone(), Node::Directory { permissions: 0o755 });
                }
                Some(Node::Directory { .. }) => {}
                Some(_) => {
                    return Err(InitramfsError::Conflict {
                        path: format!("/{path}"),
                        reason: format!("/{parent} is not a directory"),
                    })
                }
            }
        }
        match (self.nodes.get(&path), &node) {
            (None, _) | (Some(Node::Directory { .. }), Node::Directory { .. }) => {
                self.nodes.insert(path, node);
                Ok(())
            }
            (Some(_), _) => Err(InitramfsError::Conflict {
                path: format!("/{path}"),
                reason: "it is already in the initramfs".to_owned(),
            }),
        }
    }
}

/// `/etc//loader.conf` → `etc/loader.conf`; refuses `.`, `..` and the root itself.
fn normalize(path: &str) -> Result<String, InitramfsError> {
    let bad = |reason| InitramfsError::BadPath {
        path: path.to_owned(),
        reason,
    };
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if components.is_empty() {
        return Err(bad("the root directory is implicit"));
    }
    if components.iter().any(|c| *c == "." || *c == "..") {
        return Err(bad("`.` and `..` are not allowed"));
    }
    if path.contains('\0') {
        return Err(bad("NUL is not allowed"));
    }
    Ok(components.join("/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_first_whatever_the_insertion_order() {
        let mut tree = FileTree::new();
        tree.file("/etc/loader/keys/00.pub", 0o644, b"k".to_vec()).unwrap();
        tree.file("/init", 0o755, b"x".to_vec()).unwrap();
        tree.directory("/etc", 0o755).unwrap();
        tree.file("/etc-old", 0o644, Vec::new()).unwrap();
        let paths: Vec<&str> = tree.paths().collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc-old",
                "etc/loader",
                "etc/loader/keys",
                "etc/loader/keys/00.pub",
                "init"
            ]
        );
    }

    #[test]
    fn directory_permissions_can_be_set_after_implicit_creation() {
        let mut tree = FileTree::new();
        tree.file("root/install.fw", 0o644, Vec::new()).unwrap();
        tree.directory("root", 0o700).unwrap();
        assert_eq!(tree.nodes["root"], Node::Directory { permissions: 0o700 });
    }

    #[test]
    fn conflicts_are_refused() {
        let mut tree = FileTree::new();
        tree.file("etc/loader.conf", 0o644, Vec::new()).unwrap();
        let twice = tree.file("/etc/loader.conf", 0o644, Vec::new()).unwrap_err();
        assert!(twice.to_string().contains("/etc/loader.conf"), "{twice}");
        let under_file = tree.file("etc/loader.conf/x", 0o644, Vec::new()).unwrap_err();
        assert!(under_file.to_string().contains("not a directory"), "{under_file}");
        assert!(tree.directory("etc/loader.conf", 0o755).is_err());
    }

    #[test]
    fn bad_paths_are_refused() {
        let mut tree = FileTree::new();
        for path in ["", "/", "//", "etc/../init", "./init", "a\0b"] {
            assert!(tree.file(path, 0o644, Vec::new()).is_err(), "{path:?}");
        }
    }
}
