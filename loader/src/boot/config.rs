//! The loader's configuration: kernel command line over an optional file.
//!
//! # `/etc/loader.conf`
//!
//! Defaults baked into the initramfs (or any file given to [`Config::load`]).
//! One `key=value` per line, with the same key names as the kernel command
//! line:
//!
//! ```text
//! # comment lines start with '#'; blank lines are ignored
//! loader.url=https://images.example.com/server.fw
//! loader.pubkey=1Yh0m4X2… (base64, as in fwup's .pub file; repeatable)
//! loader.env.NERVES_SERIAL_NUMBER="rack 4 unit 2"
//! loader.on_error=halt
//! ip=dhcp
//! ```
//!
//! Spaces around `=` and one pair of double quotes around the value are
//! removed; `#` only starts a comment at the beginning of a line (URLs may
//! contain it). A key without `=` is a flag (`loader.insecure`).
//!
//! # Precedence
//!
//! The file is read first, then the kernel command line; a later value
//! replaces an earlier one, so the command line wins. `loader.pubkey`,
//! `loader.ca` and `loader.env.*` accumulate instead: keys from both
//! sources are enforced, and variables from both are set (the command line
//! wins per variable name). An empty value (`loader.disk=`) resets a key
//! to its default, so the command line can undo a file default.
//!
//! Drop-in files `/etc/loader.conf.d/*.conf` are read after the file, in
//! name order, with the same rules (a later file wins).
//!
//! Unknown `loader.*` keys are warnings with a suggestion for near misses,
//! never silently ignored; invalid values are errors naming the key, the
//! value and where it came from.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cmdline::{self, Cmdline};
use super::config_keys::{classify, KeyName};
use super::config_source::{file_settings, repeats, unknown, Setting};
pub use super::config_source::{ConfigFile, ConfigWarning, Origin};
use super::config_values as parse;
pub use super::config_values::{ConsoleMode, OnError, OnSuccess, TaskRequest};
use super::disks::{DiskSelector, Force};
use crate::diag::LogLevel;
use crate::net::StaticInterface;
use crate::source::metadata::MetadataKind;

/// Where the default configuration file lives in the initramfs.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/loader.conf";

/// Everything the `loader.*` keys say, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `loader.url=`: fetch the bundle from here.
    pub url: Option<String>,
    /// `loader.bundle=`: a bundle path (default search: `/root/install.fw`).
    pub bundle: Option<PathBuf>,
    /// `loader.disk=`: which disk (see [`DiskSelector`]).
    pub disk: Option<DiskSelector>,
    /// `loader.disk_wait=`: how long to wait for disks to appear (30 s).
    pub disk_wait: Duration,
    /// `loader.force=`: safety rules lifted for disk selection.
    pub force: Force,
    /// `loader.task=`: `auto` (default), `complete`, `upgrade` or a prefix.
    pub task: TaskRequest,
    /// `loader.pubkey=` (repeatable): Ed25519 keys, added to the baked-in ones.
    pub pubkeys: Vec<[u8; 32]>,
    /// `loader.env.NAME=VALUE`: provisioning variables for `${NAME}`.
    pub env: BTreeMap<String, String>,
    /// `loader.on_success=` (reboot).
    pub on_success: OnSuccess,
    /// `loader.on_error=` (retry).
    pub on_error: OnError,
    /// `loader.on_error_delay=`: pause before a retry (10 s).
    pub on_error_delay: Duration,
    /// `loader.on_error_retries=`: retries before halting (3).
    pub on_error_retries: u32,
    /// `loader.console=` (auto).
    pub console: ConsoleMode,
    /// `loader.ca=` (repeatable): extra CA certificates, PEM text.
    pub ca: Vec<String>,
    /// `loader.sha256=`: the whole bundle's expected digest.
    pub sha256: Option<[u8; 32]>,
    /// `loader.insecure=1`: allow plain HTTP without a key or digest.
    pub insecure: bool,
    /// `loader.report=`: status callback URL.
    pub report: Option<String>,
    /// `loader.report_timeout=`: how long the status callback may hold the
    /// reboot after the result (10 s).
    pub report_timeout: Duration,
    /// `loader.metadata=`: metadata service URL for provisioning variables.
    pub metadata: Option<String>,
    /// `loader.metadata_kind=`: how to ask it; `None` detects it from the URL.
    pub metadata_kind: Option<MetadataKind>,
    /// `loader.metadata_insecure=1`: plain-HTTP metadata from any address,
    /// not only link-local and loopback ones.
    pub metadata_insecure: bool,
    /// `loader.proxy=`: every HTTP(S) request through this proxy
    /// (`HTTPS_PROXY`/`NO_PROXY` in the environment apply otherwise).
    pub proxy: Option<String>,
    /// `loader.log=`: diagnostics on the console and in the kernel log
    /// (`info`, `debug`, `trace`; warnings only by default).
    pub log: LogLevel,
    /// The kernel's `ip=` values, in order, for the network setup.
    pub ip: Vec<String>,
    /// `loader.net.*`: the network bring-up's timeouts.
    pub net: NetSettings,
    /// `loader.dry_run=1`: choose the disk and task, print the plan, write nothing.
    pub dry_run: bool,
    /// `loader.allow_downgrade=1`: an upgrade may install an older version.
    pub allow_downgrade: bool,
    /// `loader.iface=` (repeatable): static interfaces matched by MAC
    /// address (see [`crate::net::static_iface`]); when given, no DHCP.
    pub ifaces: Vec<StaticInterface>,
    /// `loader.dns=` (repeatable, comma-separated): name servers for them.
    pub dns: Vec<IpAddr>,
}

/// `loader.net.*`; unset values keep `net::NetOptions`' defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSettings {
    /// `loader.net.carrier_timeout=` (15 s): how long a link may take to come up.
    pub carrier_timeout: Option<Duration>,
    /// `loader.net.dhcp_timeout=` (30 s): DHCP on one interface.
    pub dhcp_timeout: Option<Duration>,
    /// `loader.net.lease_grace=` (2 s): after the first lease, how long other interfaces may finish.
    pub lease_grace: Option<Duration>,
    /// `loader.net.ipv6=0` turns SLAAC off (on).
    pub ipv6: Option<bool>,
    /// `loader.net.ipv6_timeout=` (10 s): waiting for an IPv6 address when IPv4 gave none.
    pub ipv6_timeout: Option<Duration>,
}

impl NetSettings {
    /// Sets what the keys set; the rest stays as `options` has it.
    pub fn apply_to(&self, options: &mut crate::net::NetOptions) {
        let set = |slot: &mut Duration, value: Option<Duration>| {
            if let Some(v) = value {
                *slot = v;
            }
        };
        set(&mut options.carrier_timeout, self.carrier_timeout);
        set(&mut options.dhcp_timeout, self.dhcp_timeout);
        set(&mut options.lease_grace, self.lease_grace);
        set(&mut options.ipv6_timeout, self.ipv6_timeout);
        if let Some(ipv6) = self.ipv6 {
            options.ipv6 = ipv6;
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: None,
            bundle: None,
            disk: None,
            disk_wait: Duration::from_secs(30),
            force: Force::default(),
            task: TaskRequest::Auto,
            pubkeys: Vec::new(),
            env: BTreeMap::new(),
            on_success: OnSuccess::Reboot,
            on_error: OnError::Retry,
            on_error_delay: Duration::from_secs(10),
            on_error_retries: 3,
            console: ConsoleMode::Auto,
            ca: Vec::new(),
            sha256: None,
            insecure: false,
            report: None,
            report_timeout: crate::report::callback::DEFAULT_FINISH_WITHIN,
            metadata: None,
            metadata_kind: None,
            metadata_insecure: false,
            proxy: None,
            log: LogLevel::Warn,
            ip: Vec::new(),
            net: NetSettings::default(),
            dry_run: false,
            allow_downgrade: false,
            ifaces: Vec::new(),
            dns: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {key}={value}: {problem}")]
    Invalid {
        origin: Origin,
        key: String,
        value: String,
        problem: String,
    },
    #[error("{origin}: {key} needs a value ({key}=…)")]
    MissingValue { origin: Origin, key: String },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A configuration and the warnings found while building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// Reads `config_path` (absent is fine: no defaults), then its drop-ins
    /// `CONFIG_PATH.d/*.conf` in name order (what `loader takeover` adds to
    /// an initramfs), and the kernel command line at `cmdline_path`
    /// (`/proc/cmdline`).
    pub fn load(config_path: &Path, cmdline_path: &Path) -> Result<Loaded, ConfigError> {
        let mut texts: Vec<(String, String)> = Vec::new();
        let mut drop_ins = super::inputs::baked_files(&PathBuf::from(format!("{}.d", config_path.display())), "conf");
        drop_ins.insert(0, config_path.to_path_buf());
        for path in drop_ins {
            match std::fs::read_to_string(&path) {
                Ok(text) => texts.push((path.display().to_string(), text)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(ConfigError::Read { path, source }),
            }
        }
        let cmdline_text = std::fs::read_to_string(cmdline_path).map_err(|source| ConfigError::Read {
            path: cmdline_path.into(),
            source,
        })?;
        let files: Vec<ConfigFile<'_>> = texts.iter().map(|(path, text)| ConfigFile { path, text }).collect();
        Config::from_files(&files, &cmdline::parse(&cmdline_text))
    }

    /// Builds the configuration from the file's text (if any) and the
    /// parsed command line: file first, command line over it.
    pub fn from_sources(file: Option<ConfigFile<'_>>, cmdline: &Cmdline) -> Result<Loaded, ConfigError> {
        Config::from_files(file.as_slice(), cmdline)
    }

    /// [`Config::from_sources`] with several files, read in order (a later
    /// file's value replaces an earlier one's, as the command line does).
    pub fn from_files(files: &[ConfigFile<'_>], cmdline: &Cmdline) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let mut settings = Vec::new();
        for file in files {
            let start = settings.len();
            settings.extend(file_settings(*file));
            warnings.extend(repeats(&settings[start..]));
        }
        let from_file = settings.len();
        settings.extend(cmdline.params.iter().map(|p| Setting {
            origin: Origin::Cmdline,
            key: p.key.clone(),
            value: p.value.clone(),
        }));
        if let Some(dropped) = &cmdline.dropped {
            warnings.push(ConfigWarning::Dropped(dropped.clone()));
        }
        warnings.extend(repeats(&settings[from_file..]));

        let mut config = Config::default();
        for (index, setting) in settings.iter().enumerate() {
            let in_file = index < from_file;
            match classify(&setting.key) {
                Ok(Some(key)) => config.apply(&key, setting)?,
                // Other kernel parameters are the kernel's business; in our
                // own file every key should be ours.
                Ok(None) if !in_file => {}
                Ok(None) => warnings.push(unknown(setting, None)),
                Err(suggestion) => warnings.push(unknown(setting, suggestion)),
            }
        }
        Ok(Loaded { config, warnings })
    }

    fn apply(&mut self, key: &KeyName, s: &Setting) -> Result<(), ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid {
            origin: s.origin.clone(),
            key: s.key.clone(),
            value: s.value.clone().unwrap_or_default(),
            problem,
        };
        let name = match key {
            KeyName::Env(name) => {
                parse::env_name(name).map_err(invalid)?;
                self.env.insert(name.clone(), s.value.clone().unwrap_or_default());
                return Ok(());
            }
            KeyName::Ip => {
                self.ip.extend(s.value.clone());
                return Ok(());
            }
            KeyName::Known(name) => *name,
        };
        let value = match (name, s.value.as_deref()) {
            ("loader.insecure" | "loader.metadata_insecure" | "loader.dry_run" | "loader.allow_downgrade", None) => "1",
            (_, None) => {
                return Err(ConfigError::MissingValue {
                    origin: s.origin.clone(),
                    key: s.key.clone(),
                })
            }
            (_, Some(v)) => v,
        };
        if value.is_empty() && name != "loader.pubkey" {
            self.reset(name);
            return Ok(());
        }
        match name {
            "loader.url" => self.url = Some(parse::url(value).map_err(invalid)?),
            "loader.bundle" => self.bundle = Some(parse::absolute_path(value).map_err(invalid)?),
            "loader.disk" => self.disk = Some(DiskSelector::parse(value).map_err(|e| invalid(e.problem))?),
            "loader.disk_wait" => self.disk_wait = parse::duration(value).map_err(invalid)?,
            "loader.force" => self.force = Force::parse(value).map_err(invalid)?,
            "loader.task" => self.task = parse::task(value).map_err(invalid)?,
            "loader.pubkey" => self.pubkeys.push(parse::pubkey(value).map_err(invalid)?),
            "loader.on_success" => self.on_success = parse::on_success(value).map_err(invalid)?,
            "loader.on_error" => self.on_error = parse::on_error(value).map_err(invalid)?,
            "loader.on_error_delay" => self.on_error_delay = parse::duration(value).map_err(invalid)?,
            "loader.on_error_retries" => self.on_error_retries = parse::count(value).map_err(invalid)?,
            "loader.console" => self.console = parse::console(value).map_err(invalid)?,
            "loader.ca" => self.ca.push(parse::ca_pem(value).map_err(invalid)?),
            "loader.sha256" => self.sha256 = Some(parse::sha256(value).map_err(invalid)?),
            "loader.insecure" => self.insecure = parse::boolean(value).map_err(invalid)?,
            "loader.report" => self.report = Some(parse::url(value).map_err(invalid)?),
            "loader.metadata" => self.metadata = Some(parse::url(value).map_err(invalid)?),
            "loader.dry_run" => self.dry_run = parse::boolean(value).map_err(invalid)?,
            "loader.allow_downgrade" => self.allow_downgrade = parse::boolean(value).map_err(invalid)?,
            "loader.net.carrier_timeout" => self.net.carrier_timeout = Some(parse::duration(value).map_err(invalid)?),
            "loader.net.dhcp_timeout" => self.net.dhcp_timeout = Some(parse::duration(value).map_err(invalid)?),
            "loader.net.lease_grace" => self.net.lease_grace = Some(parse::duration(value).map_err(invalid)?),
            "loader.net.ipv6" => self.net.ipv6 = Some(parse::boolean(value).map_err(invalid)?),
            "loader.net.ipv6_timeout" => self.net.ipv6_timeout = Some(parse::duration(value).map_err(invalid)?),
            "loader.report_timeout" => self.report_timeout = parse::duration(value).map_err(invalid)?,
            "loader.metadata_kind" => self.metadata_kind = Some(MetadataKind::parse(value).map_err(invalid)?),
            "loader.metadata_insecure" => self.metadata_insecure = parse::boolean(value).map_err(invalid)?,
            "loader.proxy" => self.proxy = Some(parse::url(value).map_err(invalid)?),
            "loader.log" => self.log = LogLevel::parse(value).map_err(invalid)?,
            "loader.iface" => self.ifaces.push(value.parse().map_err(invalid)?),
            "loader.dns" => {
                for server in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let address = server
                        .parse()
                        .map_err(|_| invalid(format!("`{server}` is not an IP address")))?;
                    self.dns.push(address);
                }
            }
            other => return Err(invalid(format!("{other} is known but not handled"))),
        }
        Ok(())
    }

    /// `key=` puts a key back to its default.
    fn reset(&mut self, name: &str) {
        let d = Config::default();
        match name {
            "loader.url" => self.url = d.url,
            "loader.bundle" => self.bundle = d.bundle,
            "loader.disk" => self.disk = d.disk,
            "loader.disk_wait" => self.disk_wait = d.disk_wait,
            "loader.force" => self.force = d.force,
            "loader.task" => self.task = d.task,
            "loader.on_success" => self.on_success = d.on_success,
            "loader.on_error" => self.on_error = d.on_error,
            "loader.on_error_delay" => self.on_error_delay = d.on_error_delay,
            "loader.on_error_retries" => self.on_error_retries = d.on_error_retries,
            "loader.console" => self.console = d.console,
            "loader.ca" => self.ca = d.ca,
            "loader.sha256" => self.sha256 = d.sha256,
            "loader.insecure" => self.insecure = d.insecure,
            "loader.report" => self.report = d.report,
            "loader.metadata" => self.metadata = d.metadata,
            "loader.dry_run" => self.dry_run = d.dry_run,
            "loader.allow_downgrade" => self.allow_downgrade = d.allow_downgrade,
            "loader.net.carrier_timeout" => self.net.carrier_timeout = None,
            "loader.net.dhcp_timeout" => self.net.dhcp_timeout = None,
            "loader.net.lease_grace" => self.net.lease_grace = None,
            "loader.net.ipv6" => self.net.ipv6 = None,
            "loader.net.ipv6_timeout" => self.net.ipv6_timeout = None,
            "loader.report_timeout" => self.report_timeout = d.report_timeout,
            "loader.metadata_kind" => self.metadata_kind = d.metadata_kind,
            "loader.metadata_insecure" => self.metadata_insecure = d.metadata_insecure,
            "loader.proxy" => self.proxy = d.proxy,
            "loader.log" => self.log = d.log,
            "loader.iface" => self.ifaces = d.ifaces,
            "loader.dns" => self.dns = d.dns,
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
