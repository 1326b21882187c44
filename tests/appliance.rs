//! The appliance files: install.sh into a staging directory, the unit checked
//! by `systemd-analyze verify` in that tree and rated by `systemd-analyze
//! security --offline=true`, the packaged configuration, and the installed tree
//! run the way the unit runs it (its configuration, its working directory) with
//! a simulated modem, checked with `smsbridge status`.

mod common;
mod sim_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sim_support::{SimProcess, TempDir, eventually, run, wait_for};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `install.sh --destdir <dir>/root` with the test binary.
fn stage(dir: &Path, extra: &[&str]) -> PathBuf {
    let root = dir.join("root");
    let out = run(
        Command::new("sh")
            .arg(repo().join("install.sh"))
            .arg("--destdir")
            .arg(&root)
            .arg("--binary")
            .arg(env!("CARGO_BIN_EXE_smsbridge"))
            .args(extra),
        Duration::from_secs(60),
    );
    assert!(out.ok(), "install.sh failed:\n{}", out.all());
    root
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn install_sh_stages_every_file_and_keeps_an_existing_configuration() {
    let dir = TempDir::new("install-sh");
    let root = stage(dir.path(), &[]);
    for (path, want) in [
        ("usr/bin/smsbridge", 0o755),
        ("etc/systemd/system/smsbridge.service", 0o644),
        ("etc/udev/rules.d/70-smsbridge.rules", 0o644),
        ("etc/smsbridge/smsbridge.toml", 0o640),
        ("usr/share/doc/smsbridge/README.md", 0o644),
        ("usr/share/doc/smsbridge/kamailio.md", 0o644),
        ("usr/share/doc/smsbridge/asterisk.md", 0o644),
        ("usr/share/doc/smsbridge/udev.md", 0o644),
        ("usr/share/doc/smsbridge/hw-tests.md", 0o644),
        ("var/lib/smsbridge", 0o750),
    ] {
        assert_eq!(mode(&root.join(path)), want, "{path}");
    }
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/smsbridge.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/smsbridge --config /etc/smsbridge/smsbridge.toml run")
    );
    // A second run leaves an edited configuration alone.
    let conf = root.join("etc/smsbridge/smsbridge.toml");
    std::fs::write(&conf, "[numbers]\ndefault_country_code = \"49\"\n").unwrap();
    stage(dir.path(), &[]);
    assert!(std::fs::read_to_string(&conf).unwrap().contains("\"49\""));
    // Another prefix: the unit follows it.
    let dir2 = TempDir::new("install-sh-prefix");
    let root2 = stage(dir2.path(), &["--prefix", "/usr/local"]);
    assert!(root2.join("usr/local/bin/smsbridge").exists());
    let unit2 =
        std::fs::read_to_string(root2.join("etc/systemd/system/smsbridge.service")).unwrap();
    assert!(
        unit2.contains("ExecStart=/usr/local/bin/smsbridge --config"),
        "{unit2}"
    );
    assert!(!unit2.contains("/usr/bin/smsbridge"), "{unit2}");
}

#[test]
fn install_sh_refuses_unknown_options_and_has_help() {
    let out = run(
        Command::new("sh")
            .arg(repo().join("install.sh"))
            .arg("--bogus"),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{}", out.all());
    let help = run(
        Command::new("sh")
            .arg(repo().join("install.sh"))
            .arg("--help"),
        Duration::from_secs(10),
    );
    assert!(
        help.ok() && help.stdout.contains("--destdir"),
        "{}",
        help.all()
    );
}

fn systemd_analyze() -> bool {
    common::peer_available(
        "systemd-analyze",
        "apt-get install systemd",
        common::command_succeeds("systemd-analyze", &["--version"]),
    )
}

/// The staged tree plus the host's own units (targets the unit refers to).
fn verify_root(dir: &Path) -> PathBuf {
    let root = stage(dir, &[]);
    let units = root.join("lib/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    for entry in std::fs::read_dir("/lib/systemd/system").expect("host units") {
        let entry = entry.unwrap();
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::copy(entry.path(), units.join(entry.file_name()));
        }
    }
    root
}

#[test]
fn systemd_analyze_verify_accepts_the_installed_unit() {
    if !systemd_analyze() {
        return;
    }
    let dir = TempDir::new("verify");
    let root = verify_root(dir.path());
    let out = run(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg("smsbridge.service"),
        Duration::from_secs(60),
    );
    assert!(
        out.ok() && out.all().trim().is_empty(),
        "systemd-analyze verify:\n{}",
        out.all()
    );
    // And it does check: without the binary it fails.
    std::fs::remove_file(root.join("usr/bin/smsbridge")).unwrap();
    let out = run(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg("smsbridge.service"),
        Duration::from_secs(60),
    );
    assert!(
        !out.ok() && out.all().contains("/usr/bin/smsbridge"),
        "{}",
        out.all()
    );
}

#[test]
fn systemd_analyze_security_rates_the_unit_2_5_or_better() {
    if !systemd_analyze() {
        return;
    }
    let out = run(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(repo().join("systemd/smsbridge.service")),
        Duration::from_secs(60),
    );
    let text = out.all();
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no rating:\n{text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable rating {line:?}"));
    println!("systemd-analyze security: {}", line.trim());
    assert!(score <= 2.5, "{line}\n{text}");
}

#[test]
fn the_unit_has_what_the_appliance_needs() {
    let unit = std::fs::read_to_string(repo().join("systemd/smsbridge.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=60s",
        "Restart=on-failure",
        "StateDirectory=smsbridge",
        "User=smsbridge",
        "SupplementaryGroups=dialout",
        "DevicePolicy=closed",
        "DeviceAllow=char-ttyUSB rw",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "ExecStart=/usr/bin/smsbridge --config /etc/smsbridge/smsbridge.toml run",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
}

#[test]
fn the_packaged_configuration_is_valid_with_every_example_uncommented() {
    let bin = env!("CARGO_BIN_EXE_smsbridge");
    let path = repo().join("packaging/smsbridge.toml");
    let out = run(
        Command::new(bin)
            .arg("--config")
            .arg(&path)
            .args(["config", "check"]),
        Duration::from_secs(10),
    );
    assert!(out.ok(), "{}", out.all());
    assert!(
        out.stdout.contains("/var/lib/smsbridge/smsbridge.db"),
        "{}",
        out.stdout
    );
    // Uncomment every `# key = value` and `# [table]` line: still valid.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut full = String::new();
    for l in text.lines() {
        let body = l.strip_prefix("# ").unwrap_or("");
        let key = body.split(" = ").next().unwrap_or("");
        let is_key = !key.is_empty()
            && body.contains(" = ")
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        let is_table = body.starts_with('[') && body.trim_end().ends_with(']');
        if is_key || is_table {
            full.push_str(body);
        } else {
            full.push_str(l);
        }
        full.push('\n');
    }
    let dir = TempDir::new("full-config");
    let f = dir.path().join("full.toml");
    std::fs::write(&f, &full).unwrap();
    let out = run(
        Command::new(bin)
            .arg("--config")
            .arg(&f)
            .args(["config", "check"]),
        Duration::from_secs(10),
    );
    assert!(out.ok(), "{}\n{full}", out.all());
    assert!(out.stdout.contains("1 modem(s)"), "{}", out.stdout);
}

/// The staged installation, run as the unit runs it: its binary, its
/// configuration (the packaged one, pointed at a simulated modem and the staged
/// state directory), its working directory; `smsbridge status` sees the modem.
#[test]
fn the_installed_tree_runs_as_the_service_would_on_a_simulated_modem() {
    let dir = TempDir::new("as-service");
    let root = stage(dir.path(), &[]);
    let sim = SimProcess::start(dir.path(), &["--own-number", "+15550123"]);
    let state = root.join("var/lib/smsbridge");
    let conf = root.join("etc/smsbridge/smsbridge.toml");
    let sip = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let status = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace(
            "path = \"/var/lib/smsbridge/smsbridge.db\"",
            &format!("path = \"{}/smsbridge.db\"", state.display()),
        )
        .replace(
            "# [[modem]]\n# name = \"ec25\"\n# port = \"/dev/smsbridge/quectel-ec25-0123456789ABCDEF\"",
            &format!("[[modem]]\nname = \"sim\"\nport = \"{}\"", sim.port),
        )
        .replace(
            "# udp = [\"127.0.0.1:5060\"]\n# tcp = [\"127.0.0.1:5060\"]",
            &format!("udp = [\"127.0.0.1:{sip}\"]\ntcp = [\"127.0.0.1:{sip}\"]"),
        )
        .replace(
            "# listen = \"127.0.0.1:8426\"",
            &format!("listen = \"127.0.0.1:{status}\""),
        );
    assert!(
        text.contains("[[modem]]\nname = \"sim\""),
        "the example modem moved:\n{text}"
    );
    std::fs::write(&conf, text).unwrap();
    let bin = root.join("usr/bin/smsbridge");
    let mut daemon = Command::new(&bin)
        .arg("--config")
        .arg(&conf)
        .arg("run")
        .current_dir(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).unwrap())
        .spawn()
        .expect("start the installed smsbridge");
    // `smsbridge status` until it shows the modem ready, within a minute.
    let mut last = String::new();
    let ready = eventually(Duration::from_secs(60), || {
        let out = run(
            Command::new(&bin).arg("--config").arg(&conf).arg("status"),
            Duration::from_secs(10),
        );
        last = out.all();
        (out.ok() && last.contains(" ready ")).then_some(())
    })
    .is_some();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let stopped = wait_for(&mut daemon, Duration::from_secs(20));
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        ready,
        "smsbridge status never showed the modem ready:\n{last}\n{log}"
    );
    assert!(last.contains("sim "), "{last}");
    assert!(
        state.join("smsbridge.db").exists(),
        "no database in the state directory"
    );
    assert!(
        stopped.is_some_and(|s| s.success()),
        "no clean stop:\n{log}"
    );
}
