//! Which CA certificates HTTPS trusts besides the built-in Mozilla roots:
//! those baked into the initramfs (`loader initramfs --ca-cert`) and those
//! given as `loader.ca=`.

use super::config::Config;
use super::inputs::baked_files;
use super::run::BootPaths;
use crate::source::ExtraRoot;

/// The CA certificates baked into the initramfs (`/etc/loader/ca/*.pem`,
/// in name order) and then `loader.ca=` ones, as TLS roots named for error
/// messages. An unreadable baked file is skipped here; the TLS error then
/// names the roots that were used.
pub fn ca_roots(config: &Config, paths: &BootPaths) -> Vec<ExtraRoot> {
    let mut roots: Vec<ExtraRoot> = baked_files(&paths.ca_dir, "pem")
        .iter()
        .filter_map(|path| {
            Some(ExtraRoot {
                origin: path.display().to_string(),
                pem: std::fs::read(path).ok()?,
            })
        })
        .collect();
    roots.extend(config.ca.iter().enumerate().map(|(i, pem)| ExtraRoot {
        origin: format!("loader.ca #{}", i + 1),
        pem: pem.clone().into_bytes(),
    }));
    roots
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn baked_certificates_come_first_in_name_order_then_loader_ca() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.pem"), "B").unwrap();
        std::fs::write(dir.path().join("a.pem"), "A").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a certificate").unwrap();
        let mut paths = BootPaths::system();
        paths.ca_dir = dir.path().to_path_buf();
        let config = Config {
            ca: vec!["C".into()],
            ..Config::default()
        };
        let roots = ca_roots(&config, &paths);
        let pems: Vec<&[u8]> = roots.iter().map(|r| r.pem.as_slice()).collect();
        assert_eq!(pems, [b"A".as_slice(), b"B", b"C"]);
        assert!(roots[0].origin.ends_with("a.pem"), "{}", roots[0].origin);
        assert_eq!(roots[2].origin, "loader.ca #1");
    }

    #[test]
    fn a_missing_directory_means_only_loader_ca() {
        let mut paths = BootPaths::system();
        paths.ca_dir = PathBuf::from("/nonexistent/ca");
        assert!(ca_roots(&Config::default(), &paths).is_empty());
    }
}
