//! What this system reports about itself, on the console and as the JSON page.
//!
//! The console marker line is a stable interface: the QEMU tests and the
//! demo wait for it. Its format is
//!
//! ```text
//! installed-system: slot=<a|b|unknown> version=<VERSION_ID> up
//! ```
//!
//! and it is printed last, once the HTTP server is listening.

use std::net::IpAddr;

use crate::identity::Slot;

/// Prefix of every console line this init prints.
pub const LINE_PREFIX: &str = "installed-system:";

/// The state of the application data partition at boot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataStatus {
    /// Device node, e.g. `/dev/vda4`, when the partition was found.
    pub device: Option<String>,
    pub mounted: bool,
    /// `/data/marker` existed at boot.
    pub marker: bool,
    /// Boots recorded on the data partition, this one included.
    pub boot_count: Option<u64>,
}

/// Everything the page and the console lines show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStatus {
    pub slot: Option<Slot>,
    pub version: String,
    /// The root partition's device node, e.g. `/dev/vda2`.
    pub root: Option<String>,
    pub data: DataStatus,
    pub addresses: Vec<IpAddr>,
}

impl SystemStatus {
    fn slot_name(&self) -> &'static str {
        self.slot.map_or("unknown", Slot::name)
    }

    /// The marker line (see the module docs).
    pub fn up_line(&self) -> String {
        format!("{LINE_PREFIX} slot={} version={} up", self.slot_name(), self.version)
    }

    /// Detail lines printed before the marker line.
    pub fn detail_lines(&self) -> Vec<String> {
        let data = &self.data;
        let marker = match (data.mounted, data.marker) {
            (false, _) => "unknown",
            (true, true) => "present",
            (true, false) => "absent",
        };
        let boots = data.boot_count.map_or("unknown".to_string(), |count| count.to_string());
        let addresses = if self.addresses.is_empty() {
            "none (no DHCP lease; is ip=dhcp on the kernel command line?)".to_string()
        } else {
            let urls: Vec<String> = self
                .addresses
                .iter()
                .map(|address| format!("http://{address}/"))
                .collect();
            urls.join(" ")
        };
        vec![
            format!(
                "{LINE_PREFIX} root={} data={} data-marker={marker} boot-count={boots}",
                self.root.as_deref().unwrap_or("unknown"),
                data.device.as_deref().unwrap_or("none"),
            ),
            format!("{LINE_PREFIX} serving {addresses}"),
        ]
    }

    /// The page served at `GET /`; `marker_now` is checked per request so the
    /// page shows a marker written after boot too.
    pub fn to_json(&self, marker_now: bool) -> String {
        let optional = |value: Option<&str>| value.map_or("null".to_string(), json_string);
        let boots = self
            .data
            .boot_count
            .map_or("null".to_string(), |count| count.to_string());
        let addresses: Vec<String> = self.addresses.iter().map(|a| json_string(&a.to_string())).collect();
        format!(
            "{{\"slot\":{},\"version\":{},\"root\":{},\"data_device\":{},\"data_mounted\":{},\
             \"data_marker\":{},\"boot_count\":{},\"addresses\":[{}]}}\n",
            json_string(self.slot_name()),
            json_string(&self.version),
            optional(self.root.as_deref()),
            optional(self.data.device.as_deref()),
            self.data.mounted,
            self.data.mounted && marker_now,
            boots,
            addresses.join(","),
        )
    }
}

/// A JSON string literal for `text`.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booted_b() -> SystemStatus {
        SystemStatus {
            slot: Some(Slot::B),
            version: "2.0.0".into(),
            root: Some("/dev/vda3".into()),
            data: DataStatus {
                device: Some("/dev/vda4".into()),
                mounted: true,
                marker: true,
                boot_count: Some(2),
            },
            addresses: vec!["10.0.2.15".parse().unwrap()],
        }
    }

    #[test]
    fn the_marker_line_has_the_documented_format() {
        assert_eq!(booted_b().up_line(), "installed-system: slot=b version=2.0.0 up");
        let unknown = SystemStatus {
            slot: None,
            ..booted_b()
        };
        assert_eq!(unknown.up_line(), "installed-system: slot=unknown version=2.0.0 up");
    }

    #[test]
    fn the_page_is_json_with_slot_version_and_data() {
        assert_eq!(
            booted_b().to_json(true),
            "{\"slot\":\"b\",\"version\":\"2.0.0\",\"root\":\"/dev/vda3\",\"data_device\":\"/dev/vda4\",\
             \"data_mounted\":true,\"data_marker\":true,\"boot_count\":2,\"addresses\":[\"10.0.2.15\"]}\n"
        );
    }

    #[test]
    fn an_unmounted_data_partition_never_claims_a_marker() {
        let status = SystemStatus {
            data: DataStatus::default(),
            ..booted_b()
        };
        let page = status.to_json(true);
        assert!(
            page.contains("\"data_device\":null,\"data_mounted\":false,\"data_marker\":false"),
            "{page}"
        );
        assert!(status.detail_lines()[0].ends_with("data=none data-marker=unknown boot-count=unknown"));
    }

    #[test]
    fn strings_are_escaped() {
        let status = SystemStatus {
            version: "1.0\"\n\u{1}".into(),
            ..booted_b()
        };
        assert!(status.to_json(false).contains("\"version\":\"1.0\\\"\\n\\u0001\""));
    }

    #[test]
    fn detail_lines_name_devices_and_urls() {
        let lines = booted_b().detail_lines();
        assert_eq!(
            lines[0],
            "installed-system: root=/dev/vda3 data=/dev/vda4 data-marker=present boot-count=2"
        );
        assert_eq!(lines[1], "installed-system: serving http://10.0.2.15/");
        let offline = SystemStatus {
            addresses: vec![],
            ..booted_b()
        };
        assert!(offline.detail_lines()[1].contains("no DHCP lease"));
    }
}
