//! The iPXE chain script, checked as text: what iPXE will run and what the
//! kernel will see on its command line.
#![allow(clippy::unwrap_used)]

use loader::ipxe::{chain_script, kernel_cmdline, BundleDelivery, ChainOptions, IpxeError, CMDLINE_MAX};

const BASE: &str = "https://boot.example.com/loader";

fn options(bundle: BundleDelivery) -> ChainOptions {
    ChainOptions {
        base_url: Some(BASE.to_owned()),
        bundle,
        ..ChainOptions::default()
    }
}

#[test]
fn injected_bundle_script() {
    let mut opts = options(BundleDelivery::Initrd("https://cdn.example.com/app.fw".to_owned()));
    opts.loader_options.push(("disk".to_owned(), "/dev/vda".to_owned()));
    assert_eq!(
        chain_script(&opts).unwrap(),
        "#!ipxe\n\
         # Boot the loader; it installs the bundle onto this machine's disk.\n\
         kernel https://boot.example.com/loader/bzImage console=ttyS0,115200 console=tty0 loader.disk=/dev/vda\n\
         initrd https://boot.example.com/loader/initramfs\n\
         initrd https://cdn.example.com/app.fw /root/install.fw\n\
         boot\n"
    );
}

#[test]
fn loader_fetches_bundle_script() {
    let opts = options(BundleDelivery::LoaderFetches("http://10.0.2.2:8080/app.fw".to_owned()));
    assert_eq!(
        chain_script(&opts).unwrap(),
        "#!ipxe\n\
         # Boot the loader; it installs the bundle onto this machine's disk.\n\
         kernel https://boot.example.com/loader/bzImage console=ttyS0,115200 console=tty0 loader.url=http://10.0.2.2:8080/app.fw\n\
         initrd https://boot.example.com/loader/initramfs\n\
         boot\n"
    );
}

#[test]
fn wrapped_cpio_and_relative_urls() {
    let opts = ChainOptions {
        bundle: BundleDelivery::WrappedCpio("install.cpio".to_owned()),
        consoles: vec!["ttyS1,57600".to_owned()],
        ..ChainOptions::default()
    };
    assert_eq!(
        chain_script(&opts).unwrap(),
        "#!ipxe\n\
         # Boot the loader; it installs the bundle onto this machine's disk.\n\
         kernel bzImage initrd=initramfs initrd=install.cpio console=ttyS1,57600\n\
         initrd initramfs\n\
         initrd install.cpio\n\
         boot\n"
    );
}

/// UEFI iPXE without initrd handover: the kernel's EFI stub loads the
/// initrds named on the command line by iPXE's image names.
#[test]
fn wrapped_cpio_names_both_initrds_for_the_efi_stub() {
    let opts = ChainOptions {
        base_url: Some("http://10.0.2.2:8000/boot".to_owned()),
        bundle: BundleDelivery::WrappedCpio("https://cdn.example.com/app/v2/app.cpio?sig=1".to_owned()),
        ..ChainOptions::default()
    };
    let cmdline = kernel_cmdline(&opts).unwrap();
    assert!(cmdline.starts_with("initrd=initramfs initrd=app.cpio "), "{cmdline}");
    let injected = ChainOptions {
        bundle: BundleDelivery::Initrd("app.fw".to_owned()),
        ..ChainOptions::default()
    };
    assert!(!kernel_cmdline(&injected).unwrap().contains("initrd="));
}

#[test]
fn base_url_with_trailing_slash() {
    let opts = ChainOptions {
        base_url: Some("http://10.0.2.2:8000/".to_owned()),
        ..ChainOptions::default()
    };
    let script = chain_script(&opts).unwrap();
    assert!(script.contains("kernel http://10.0.2.2:8000/bzImage "), "{script}");
    assert!(script.contains("initrd http://10.0.2.2:8000/initramfs\n"), "{script}");
}

#[test]
fn values_with_spaces_are_quoted_for_the_kernel() {
    let mut opts = options(BundleDelivery::None);
    opts.loader_options
        .push(("disk".to_owned(), "model:Samsung SSD 980".to_owned()));
    opts.extra_params = vec!["ip=dhcp".to_owned(), "quiet".to_owned()];
    assert_eq!(
        kernel_cmdline(&opts).unwrap(),
        "console=ttyS0,115200 console=tty0 loader.disk=\"model:Samsung SSD 980\" ip=dhcp quiet"
    );
}

#[test]
fn values_ipxe_would_change_are_refused() {
    for value in [
        "a  b",
        " a",
        "a ",
        "a\tb",
        "line\nbreak",
        "say \"hi\"",
        "${net0/ip}",
        "a # b",
        "a || b",
        "a ; b",
    ] {
        let mut opts = options(BundleDelivery::None);
        opts.loader_options.push(("disk".to_owned(), value.to_owned()));
        let err = chain_script(&opts).unwrap_err();
        assert!(matches!(err, IpxeError::BadValue { .. }), "{value:?}: {err}");
    }
}

/// The same options go onto the rescue ISO's GRUB line, and GRUB passes
/// `\\` and `'` on with a backslash the kernel keeps: refused for both, so
/// an option works in the chain script and on the ISO or in neither.
#[test]
fn values_grub_would_change_are_refused_too() {
    for value in ["it's", r"C:\path"] {
        let mut opts = options(BundleDelivery::None);
        opts.loader_options.push(("env.X".to_owned(), value.to_owned()));
        let err = chain_script(&opts).unwrap_err();
        assert!(err.to_string().contains("GRUB"), "{value:?}: {err}");
    }
}

#[test]
fn bad_names_and_urls_are_refused() {
    let mut opts = options(BundleDelivery::None);
    opts.extra_params = vec!["bad name=1".to_owned()];
    assert_eq!(
        chain_script(&opts).unwrap_err(),
        IpxeError::BadName("bad name".to_owned())
    );

    let opts = options(BundleDelivery::Initrd("https://x/my app.fw".to_owned()));
    assert!(matches!(chain_script(&opts).unwrap_err(), IpxeError::BadUrl { .. }));

    let opts = options(BundleDelivery::LoaderFetches("app.fw".to_owned()));
    let err = chain_script(&opts).unwrap_err();
    assert!(err.to_string().contains("absolute"), "{err}");
}

#[test]
fn loader_url_cannot_be_given_twice() {
    let mut opts = options(BundleDelivery::LoaderFetches("https://x/app.fw".to_owned()));
    opts.loader_options
        .push(("url".to_owned(), "https://y/other.fw".to_owned()));
    assert_eq!(chain_script(&opts).unwrap_err(), IpxeError::Duplicate("url".to_owned()));
}

#[test]
fn command_line_limit_is_enforced() {
    let fixed = "bzImage console=ttyS0,115200 console=tty0 loader.pad=".len();
    let mut opts = options(BundleDelivery::None);
    opts.loader_options
        .push(("pad".to_owned(), "x".repeat(CMDLINE_MAX - fixed)));
    let cmdline = kernel_cmdline(&opts).unwrap();
    assert_eq!("bzImage ".len() + cmdline.len(), CMDLINE_MAX);

    opts.loader_options[0].1.push('x');
    assert_eq!(
        chain_script(&opts).unwrap_err(),
        IpxeError::CmdlineTooLong { len: CMDLINE_MAX + 1 }
    );
}

#[test]
fn no_parameters_means_no_trailing_space() {
    let opts = ChainOptions {
        consoles: Vec::new(),
        ..ChainOptions::default()
    };
    let script = chain_script(&opts).unwrap();
    assert!(script.contains("\nkernel bzImage\n"), "{script}");
}

#[test]
fn fetched_bundle_url_must_be_one_word() {
    let opts = options(BundleDelivery::LoaderFetches("https://x/my app.fw".to_owned()));
    assert!(matches!(chain_script(&opts).unwrap_err(), IpxeError::BadUrl { .. }));
}
