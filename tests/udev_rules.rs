//! The udev rules in `udev/`: a strict syntax check of every line (Debian 12's
//! systemd 252 has no `udevadm verify`, which came in 253), a small evaluator
//! that runs the rules against the properties udev's usb_id and path_id builtins
//! give a modem's ports, and `udevadm test` loading the file when udev is
//! installed and we are root (CI).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const RULES: &str = "udev/70-smsbridge.rules";

fn rules_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(RULES)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Match,
    NoMatch,
    Assign,
    Add,
    Remove,
    AssignFinal,
}

#[derive(Debug, Clone)]
struct Pair {
    key: String,
    attr: Option<String>,
    op: Op,
    value: String,
}

#[derive(Debug, Clone)]
struct Rule {
    line: usize,
    pairs: Vec<Pair>,
}

/// Keys udev knows, whether they take `{attribute}`, and which operators.
fn key_kind(key: &str) -> Option<(bool, &'static str)> {
    // (takes an attribute, allowed: m = match ops, a = assign ops)
    Some(match key {
        "ACTION" | "DEVPATH" | "KERNEL" | "KERNELS" | "SUBSYSTEM" | "SUBSYSTEMS" | "DRIVER"
        | "DRIVERS" | "TAGS" | "RESULT" => (false, "m"),
        "ATTRS" | "TEST" | "CONST" => (true, "m"),
        "NAME" | "SYMLINK" | "TAG" | "PROGRAM" => (false, "ma"),
        "ATTR" | "SYSCTL" | "ENV" => (true, "ma"),
        "OWNER" | "GROUP" | "MODE" | "LABEL" | "GOTO" | "OPTIONS" => (false, "a"),
        "RUN" | "IMPORT" | "SECLABEL" => (true, "a"),
        _ => return None,
    })
}

fn parse_value(rest: &str, line: usize) -> Result<(String, &str), String> {
    let rest = rest
        .strip_prefix('"')
        .ok_or_else(|| format!("line {line}: value must be in double quotes: {rest:?}"))?;
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &rest[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => break,
            },
            _ => out.push(c),
        }
    }
    Err(format!("line {line}: unterminated quoted value"))
}

/// Parses one rule line strictly: `KEY[{attr}] OP "value"` pairs separated by
/// commas, known keys with operators they allow, nothing left over.
fn parse_rule(text: &str, line: usize) -> Result<Rule, String> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    loop {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.is_empty() {
            return Err(format!("line {line}: expected a key at {rest:?}"));
        }
        let (takes_attr, ops) =
            key_kind(key).ok_or_else(|| format!("line {line}: unknown key {key}"))?;
        rest = &rest[key_end..];
        let attr = if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("line {line}: {key}{{ not closed"))?;
            let a = &r[..end];
            if a.is_empty() || a.contains(char::is_whitespace) {
                return Err(format!("line {line}: bad attribute {a:?} of {key}"));
            }
            rest = &r[end + 1..];
            Some(a.to_string())
        } else {
            None
        };
        if takes_attr != attr.is_some() {
            return Err(format!(
                "line {line}: {key} {} an {{attribute}}",
                if takes_attr { "needs" } else { "takes no" }
            ));
        }
        rest = rest.trim_start();
        let (op, len) = [
            ("==", Op::Match),
            ("!=", Op::NoMatch),
            ("+=", Op::Add),
            ("-=", Op::Remove),
            (":=", Op::AssignFinal),
            ("=", Op::Assign),
        ]
        .iter()
        .find(|(s, _)| rest.starts_with(s))
        .map(|(s, o)| (*o, s.len()))
        .ok_or_else(|| format!("line {line}: no operator after {key}"))?;
        let is_match = matches!(op, Op::Match | Op::NoMatch);
        if is_match && !ops.contains('m') || !is_match && !ops.contains('a') {
            return Err(format!("line {line}: {key} does not take {op:?}"));
        }
        rest = rest[len..].trim_start();
        let (value, after) = parse_value(rest, line)?;
        pairs.push(Pair {
            key: key.to_string(),
            attr,
            op,
            value,
        });
        rest = after.trim_start();
        if rest.is_empty() {
            break;
        }
        rest = rest
            .strip_prefix(',')
            .ok_or_else(|| format!("line {line}: expected ',' between pairs at {rest:?}"))?
            .trim_start();
        if rest.is_empty() {
            return Err(format!("line {line}: trailing comma"));
        }
    }
    Ok(Rule { line, pairs })
}

/// Parses a rules file: comments, blank lines, `\` continuations; then checks
/// that every GOTO has a LABEL after it and labels are unique.
fn parse_file(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.ends_with(' ') || raw.ends_with('\t') {
            return Err(format!("line {n}: trailing whitespace"));
        }
        if pending.is_empty() {
            start = n;
            let t = raw.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
        }
        if let Some(body) = raw.strip_suffix('\\') {
            pending.push_str(body);
            continue;
        }
        pending.push_str(raw);
        rules.push(parse_rule(&pending, start)?);
        pending.clear();
    }
    if !pending.is_empty() {
        return Err("file ends in a line continuation".into());
    }
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    for (idx, r) in rules.iter().enumerate() {
        for p in r.pairs.iter().filter(|p| p.key == "LABEL") {
            if labels.insert(p.value.clone(), idx).is_some() {
                return Err(format!("line {}: LABEL {} twice", r.line, p.value));
            }
        }
    }
    for (idx, r) in rules.iter().enumerate() {
        for p in r.pairs.iter().filter(|p| p.key == "GOTO") {
            match labels.get(&p.value) {
                Some(&at) if at > idx => {}
                Some(_) => return Err(format!("line {}: GOTO {} jumps back", r.line, p.value)),
                None => return Err(format!("line {}: GOTO {} has no LABEL", r.line, p.value)),
            }
        }
    }
    Ok(rules)
}

/// udev's glob: `|` alternatives, `*` and `?`.
fn glob(pattern: &str, s: &str) -> bool {
    fn one(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => one(&p[1..], s) || (!s.is_empty() && one(p, &s[1..])),
            (Some(b'?'), Some(_)) => one(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => one(&p[1..], &s[1..]),
            _ => false,
        }
    }
    pattern
        .split('|')
        .any(|alt| one(alt.as_bytes(), s.as_bytes()))
}

/// A device as the rules see it after the builtins ran.
#[derive(Debug, Clone, Default)]
struct Device {
    action: String,
    subsystem: String,
    parent_subsystems: Vec<String>,
    env: BTreeMap<String, String>,
}

/// What the rules did to a device.
#[derive(Debug, Default)]
struct Outcome {
    env: BTreeMap<String, String>,
    symlinks: BTreeSet<String>,
    tags: BTreeSet<String>,
    attrs: BTreeMap<String, String>,
    group: Option<String>,
    mode: Option<String>,
    imports: Vec<String>,
}

fn substitute(value: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("$env{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 5..];
        let end = after.find('}').expect("closed $env{");
        out.push_str(env.get(&after[..end]).map_or("", String::as_str));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs the rules on `dev` the way udev does for the keys our file uses.
fn evaluate(rules: &[Rule], dev: &Device) -> Outcome {
    let mut out = Outcome {
        env: dev.env.clone(),
        ..Outcome::default()
    };
    let mut i = 0;
    'rules: while i < rules.len() {
        let rule = &rules[i];
        i += 1;
        for p in &rule.pairs {
            let cur = match (p.key.as_str(), p.op) {
                (_, Op::Assign | Op::Add | Op::Remove | Op::AssignFinal) => continue,
                ("ACTION", _) => dev.action.clone(),
                ("SUBSYSTEM", _) => dev.subsystem.clone(),
                ("ENV", _) => out
                    .env
                    .get(p.attr.as_deref().unwrap_or_default())
                    .cloned()
                    .unwrap_or_default(),
                ("SUBSYSTEMS", _) => {
                    let any = dev.parent_subsystems.iter().any(|s| glob(&p.value, s));
                    if any == (p.op == Op::Match) {
                        continue;
                    }
                    continue 'rules;
                }
                (k, _) => panic!("line {}: the evaluator does not know {k}", rule.line),
            };
            if glob(&p.value, &cur) != (p.op == Op::Match) {
                continue 'rules;
            }
        }
        for p in &rule.pairs {
            let v = substitute(&p.value, &out.env);
            match (p.key.as_str(), p.op) {
                (_, Op::Match | Op::NoMatch) => {}
                ("ENV", _) => {
                    out.env.insert(p.attr.clone().unwrap_or_default(), v);
                }
                ("SYMLINK", _) => {
                    out.symlinks.insert(v);
                }
                ("TAG", _) => {
                    out.tags.insert(v);
                }
                ("ATTR", _) => {
                    out.attrs.insert(p.attr.clone().unwrap_or_default(), v);
                }
                ("GROUP", _) => out.group = Some(v),
                ("MODE", _) => out.mode = Some(v),
                ("IMPORT", _) => out.imports.push(v),
                ("LABEL", _) => {}
                ("GOTO", _) => {
                    i = rules
                        .iter()
                        .position(|r| r.pairs.iter().any(|q| q.key == "LABEL" && q.value == v))
                        .expect("label exists");
                }
                (k, _) => panic!("line {}: the evaluator does not know {k}", rule.line),
            }
        }
    }
    out
}

fn load() -> Vec<Rule> {
    let text = std::fs::read_to_string(rules_path()).expect("rules file");
    parse_file(&text).unwrap_or_else(|e| panic!("{RULES}: {e}"))
}

const PATH: &str = "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.2";

/// A modem port: a tty under a USB interface, with the builtins' properties.
fn tty(vid: &str, pid: &str, ifnum: &str, serial: Option<&str>) -> Device {
    let mut env = BTreeMap::new();
    env.insert("ID_VENDOR_ID".into(), vid.into());
    env.insert("ID_MODEL_ID".into(), pid.into());
    env.insert("ID_USB_INTERFACE_NUM".into(), ifnum.into());
    env.insert("ID_PATH".into(), PATH.into());
    if let Some(s) = serial {
        env.insert("ID_SERIAL_SHORT".into(), s.into());
    }
    Device {
        action: "add".into(),
        subsystem: "tty".into(),
        parent_subsystems: vec!["usb-serial".into(), "usb".into()],
        env,
    }
}

/// The AT interface of every supported model, as udev/README.md lists them.
const AT_PORTS: &[(&str, &str, &str, &str)] = &[
    ("12d1", "1506", "00", "huawei-e3372"),
    ("12d1", "1001", "02", "huawei-e1550"),
    ("12d1", "1003", "01", "huawei-e220"),
    ("2c7c", "0125", "02", "quectel-ec25"),
    ("2c7c", "0121", "02", "quectel-ec21"),
    ("2c7c", "0191", "02", "quectel-eg91"),
    ("2c7c", "0195", "02", "quectel-eg95"),
    ("2c7c", "0296", "02", "quectel-bg96"),
    ("2c7c", "0306", "02", "quectel-eg06"),
    ("2c7c", "0800", "02", "quectel-rm500"),
    ("1e0e", "9001", "02", "simcom-sim7600"),
    ("1e0e", "9205", "02", "simcom-sim7080"),
    ("1e0e", "9206", "02", "simcom-sim7080"),
    ("0403", "6001", "00", "usbserial-ftdi"),
    ("10c4", "ea60", "00", "usbserial-cp210x"),
    ("1a86", "7523", "00", "usbserial-ch340"),
    ("067b", "2303", "00", "usbserial-pl2303"),
    ("1199", "68c0", "03", "sierra-mc7304"),
    ("1199", "9071", "03", "sierra-mc74xx"),
    ("1199", "9079", "03", "sierra-em74xx"),
    ("1199", "9091", "03", "sierra-em7565"),
    ("1546", "110a", "00", "ublox-lara-r2"),
    ("1546", "1107", "00", "ublox-toby-r2"),
    ("1546", "1102", "00", "ublox-lisa-u2"),
    ("1546", "1010", "06", "ublox-toby-l4"),
    ("1bc7", "0021", "06", "telit-he910"),
    ("1bc7", "1003", "02", "telit-uc864"),
    ("1bc7", "1010", "02", "telit-de910"),
    ("1bc7", "1011", "01", "telit-ce910"),
    ("19d2", "0031", "01", "zte-0031"),
    ("19d2", "0063", "01", "zte-0063"),
    ("19d2", "0117", "01", "zte-0117"),
    ("19d2", "2002", "01", "zte-2002"),
];

#[test]
fn every_line_is_well_formed() {
    let rules = load();
    assert!(rules.len() > 40, "only {} rules parsed", rules.len());
}

#[test]
fn the_checker_rejects_what_udev_would_misread() {
    for (bad, why) in [
        ("ACTION==\"add\" GOTO=\"x\"\nLABEL=\"x\"", "expected ','"),
        ("FOO==\"1\"", "unknown key"),
        ("ENV{X}==1", "double quotes"),
        ("ENV{X}=\"1", "unterminated"),
        ("ATTRS==\"1\"", "needs an {attribute}"),
        ("GROUP==\"dialout\"", "does not take"),
        ("SUBSYSTEMS=\"usb\"", "does not take"),
        ("GOTO=\"nowhere\"", "has no LABEL"),
        ("LABEL=\"a\"\nGOTO=\"a\"", "jumps back"),
        ("ACTION==\"add\",", "trailing comma"),
        ("ACTION==\"add\" ", "trailing whitespace"),
        ("ENV{X}=\"1\", \\", "continuation"),
    ] {
        let e = parse_file(bad).expect_err(bad);
        assert!(e.contains(why), "{bad:?}: {e}");
    }
    let ok = "# c\n\nSUBSYSTEMS==\"usb\", \\\n  ENV{.A}=\"$attr{bInterfaceNumber}\"\n";
    assert_eq!(parse_file(ok).expect("continuation").len(), 1);
}

#[test]
fn each_model_names_exactly_its_at_port() {
    let rules = load();
    for &(vid, pid, at, model) in AT_PORTS {
        for n in 0..16u8 {
            let ifnum = format!("{n:02x}");
            let o = evaluate(&rules, &tty(vid, pid, &ifnum, Some("SN123")));
            let ctx = format!("{vid}:{pid} interface {ifnum}");
            assert_eq!(
                o.env.get("ID_MM_DEVICE_IGNORE").map(String::as_str),
                Some("1"),
                "{ctx}"
            );
            assert_eq!(
                o.env.get("ID_MM_PORT_IGNORE").map(String::as_str),
                Some("1"),
                "{ctx}"
            );
            if ifnum == at {
                let want: BTreeSet<String> = [
                    format!("smsbridge/{model}-SN123"),
                    format!("smsbridge/by-path/{model}-{PATH}"),
                ]
                .into();
                assert_eq!(o.symlinks, want, "{ctx}");
                assert_eq!(o.group.as_deref(), Some("dialout"), "{ctx}");
                assert_eq!(o.mode.as_deref(), Some("0660"), "{ctx}");
                assert!(o.tags.contains("systemd"), "{ctx}");
            } else {
                assert!(o.symlinks.is_empty(), "{ctx}: {:?}", o.symlinks);
                assert_eq!(o.group, None, "{ctx}");
            }
        }
    }
}

#[test]
fn identical_sticks_get_different_names() {
    let rules = load();
    // Two EC25 in two sockets.
    let a = evaluate(&rules, &tty("2c7c", "0125", "02", Some("0001")));
    let mut second = tty("2c7c", "0125", "02", Some("0002"));
    second
        .env
        .insert("ID_PATH".into(), "platform-x-usb-0:1.4:1.2".into());
    let b = evaluate(&rules, &second);
    assert!(a.symlinks.is_disjoint(&b.symlinks), "{a:?} {b:?}");
    // No serial number: the USB path names it.
    let mut c = tty("12d1", "1506", "00", None);
    let d = evaluate(&rules, &c);
    assert!(
        d.symlinks
            .contains(&format!("smsbridge/huawei-e3372-{PATH}")),
        "{:?}",
        d.symlinks
    );
    // Same serial, other port: the by-path names still differ.
    c.env
        .insert("ID_PATH".into(), "platform-x-usb-0:1.4:1.0".into());
    let e = evaluate(&rules, &c);
    assert!(d.symlinks.is_disjoint(&e.symlinks));
}

#[test]
fn the_usb_device_is_hidden_from_modemmanager_and_kept_awake() {
    let rules = load();
    let mut dev = tty("2c7c", "0125", "", Some("SN"));
    dev.subsystem = "usb".into();
    dev.parent_subsystems = vec!["usb".into()];
    dev.env.remove("ID_USB_INTERFACE_NUM");
    dev.env.insert("DEVTYPE".into(), "usb_device".into());
    let o = evaluate(&rules, &dev);
    assert_eq!(
        o.env.get("ID_MM_DEVICE_IGNORE").map(String::as_str),
        Some("1")
    );
    assert_eq!(o.attrs.get("power/control").map(String::as_str), Some("on"));
    assert!(o.symlinks.is_empty());
    assert!(o.imports.contains(&"usb_id".to_string()));
}

#[test]
fn other_devices_and_removals_are_left_alone() {
    let rules = load();
    let other = evaluate(&rules, &tty("046d", "c52b", "00", Some("X")));
    assert!(other.symlinks.is_empty());
    assert!(!other.env.contains_key("ID_MM_DEVICE_IGNORE"));
    let mut gone = tty("2c7c", "0125", "02", Some("X"));
    gone.action = "remove".into();
    let o = evaluate(&rules, &gone);
    assert!(o.symlinks.is_empty() && o.imports.is_empty());
    let mut serial = tty("2c7c", "0125", "02", Some("X"));
    serial.parent_subsystems.clear();
    assert!(evaluate(&rules, &serial).symlinks.is_empty());
}

#[test]
fn every_model_in_the_rules_is_in_the_table_and_the_readme() {
    let text = std::fs::read_to_string(rules_path()).expect("rules");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("udev/README.md"))
            .expect("udev/README.md");
    let named: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split("ENV{.SMSBRIDGE_MODEL}=\"").nth(1))
        .filter_map(|r| r.split('"').next())
        .collect();
    let table: BTreeSet<&str> = AT_PORTS.iter().map(|p| p.3).collect();
    assert_eq!(named, table);
    for (vid, pid, at, model) in AT_PORTS {
        let row = format!("| `{model}` | `{vid}:{pid}` | `{at}` |");
        assert!(readme.contains(&row), "udev/README.md lacks the row {row}");
    }
}

/// Whether we run as root: /proc/self belongs to the effective user.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `udevadm test` with our file in a private mount of /etc/udev/rules.d: udev
/// itself parses it and must report nothing about it. Needs udev and root (CI).
#[test]
fn udevadm_loads_the_rules_without_complaint() {
    let found = common::command_succeeds("udevadm", &["--version"]);
    if !common::peer_available("udevadm", "apt-get install udev", found) {
        return;
    }
    if !is_root() {
        common::skip("udevadm test needs root for a private mount of /etc/udev/rules.d");
        return;
    }
    let dir = rules_path().parent().expect("udev/").to_path_buf();
    // systemd >= 253 has `udevadm verify`; use it where it exists.
    if common::command_succeeds("udevadm", &["verify", "--help"]) {
        let out = Command::new("udevadm")
            .args(["verify", "--no-summary"])
            .arg(rules_path())
            .output()
            .expect("udevadm verify");
        assert!(
            out.status.success(),
            "udevadm verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let script = format!(
        "mount --bind '{}' /etc/udev/rules.d && udevadm test --action=add /sys/devices/virtual/mem/null",
        dir.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "udevadm test failed:\n{log}");
    assert!(
        log.contains("Reading rules file: /etc/udev/rules.d/70-smsbridge.rules"),
        "udev did not read our file:\n{log}"
    );
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("70-smsbridge.rules") && !l.starts_with("Reading rules file"))
        .collect();
    assert!(
        complaints.is_empty(),
        "udev complains:\n{}",
        complaints.join("\n")
    );
}
