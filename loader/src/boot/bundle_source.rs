//! Where an attempt's bundle comes from, as the install modes need it:
//! opened once, with what kind of source it is, and a way to open it again
//! from its first byte (a second download, or the injected file re-read).

use super::config::Config;
use super::fetch::{fetch_url, refetch_url};
use super::inputs::{find_bundle, open};
use super::reporter::BootReporter;
use super::run::{BootPaths, Failure};
use crate::apply::ApplyError;
use crate::install_mode::{Origin, Source};

/// Opens the bundle again from its first byte.
pub(super) type Reopen = Box<dyn FnMut() -> Result<Source, ApplyError>>;

/// `loader.url=`, else the injected bundle (`loader.bundle=` or
/// `/root/install.fw`): opened, its kind, and how to open it again.
pub(super) fn open_bundle_source(
    config: &Config,
    paths: &BootPaths,
    keys_enforced: bool,
    out: &mut BootReporter,
) -> Result<(Source, Origin, Reopen), Failure> {
    if let Some(url) = &config.url {
        out.stage("fetching the bundle");
        let fetched = fetch_url(url, config, paths, keys_enforced, out)?;
        let (url, config, paths) = (url.clone(), config.clone(), paths.clone());
        let reopen: Reopen = Box::new(move || {
            refetch_url(&url, &config, &paths, keys_enforced)
                .map(Source::from)
                .map_err(download_failed)
        });
        return Ok((fetched.into(), Origin::NETWORK, reopen));
    }
    out.stage("finding the bundle");
    let bundle = find_bundle(config, paths)?;
    out.say(&format!("bundle: {}", bundle.display()));
    let reopen_path = bundle.clone();
    let reopen: Reopen = Box::new(move || file_source(&reopen_path).map_err(download_failed));
    // As PID 1 nothing else runs that could change the injected file
    // between two reads; on a host (`loader boot`) something could.
    let immutable = super::pid1::is_pid1();
    Ok((file_source(&bundle)?, Origin::file(immutable), reopen))
}

fn file_source(path: &std::path::Path) -> Result<Source, Failure> {
    let file = open(path)?;
    let length = file.metadata().ok().map(|m| m.len());
    Ok(Source {
        reader: Box::new(file),
        length,
        stats: None,
        check: None,
    })
}

/// Opening the bundle again failed: final, named like a download failure.
fn download_failed(failure: Failure) -> ApplyError {
    ApplyError::Download {
        message: failure.message,
        restart: None,
    }
}
