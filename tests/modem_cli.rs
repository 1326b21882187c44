//! `smsbridge modem probe`, `sms send` and `sms listen` as a user runs them,
//! against `smsbridge modem sim` on a PTY.

mod sim_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sim_support::{SimProcess, TempDir, run};

const BIN: &str = env!("CARGO_BIN_EXE_smsbridge");
const PHONE: &str = "+4915112345678";

fn smsbridge(args: &[&str]) -> sim_support::Ran {
    run(Command::new(BIN).args(args), Duration::from_secs(60))
}

#[test]
fn probe_send_with_report_and_listen() {
    let dir = TempDir::new("modem-cli");
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--send-delay",
            "300ms",
            "--report-delay",
            "300ms",
            "--reply-delay",
            "300ms",
        ],
    );
    let port = sim.port.clone();

    let probe = smsbridge(&["modem", "probe", "--port", &port, "--json"]);
    assert!(probe.ok(), "{}", probe.all());
    let info: Value = serde_json::from_str(probe.stdout.trim()).unwrap();
    assert_eq!(info["sim"], "READY");
    assert_eq!(info["registered"], true);
    assert_eq!(info["registration"]["cs"], "home");
    assert!(
        info["imsi"].as_str().is_some_and(|s| s.len() == 15),
        "{info}"
    );
    assert!(
        info["receive_mode"].as_str().unwrap().contains("+CMTI"),
        "{info}"
    );
    let human = smsbridge(&["modem", "probe", "--port", &port]);
    assert!(
        human.stdout.contains("SIM           READY"),
        "{}",
        human.all()
    );

    let text = "Long hello 😁 ".repeat(8);
    let send = smsbridge(&[
        "sms", "send", "--port", &port, "--to", PHONE, "--report", &text,
    ]);
    assert!(send.ok(), "{}", send.all());
    let lines: Vec<&str> = send.stdout.lines().collect();
    assert_eq!(lines[0], "part 1/2: submitted, MR 1", "{}", send.stdout);
    assert_eq!(lines[1], "part 2/2: submitted, MR 2", "{}", send.stdout);
    assert!(
        lines[2..]
            .iter()
            .any(|l| l.starts_with("part 1/2: delivered (status 0x00")),
        "{}",
        send.stdout
    );
    assert!(
        lines[2..]
            .iter()
            .any(|l| l.starts_with("part 2/2: delivered (status 0x00")),
        "{}",
        send.stdout
    );
    let sent = sim.sent();
    assert_eq!(sent.len(), 2);

    // The phone echoed the text back while `sms send` ran; `sms listen` finds it
    // in storage at start, reassembled, then hears an injected one.
    let mut listen = Command::new(BIN)
        .args(["sms", "listen", "--port", &port, "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(listen.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["type"], "sms");
    assert_eq!(first["from"], PHONE);
    assert_eq!(first["text"], text.as_str());
    assert_eq!(first["parts"], 2);
    assert_eq!(first["incomplete"], false);
    let inject = smsbridge(&[
        "modem",
        "sim-inject",
        "--link",
        &port,
        "--from",
        "+4917099999999",
        "--order",
        "reverse",
        &"Zurück? ".repeat(40),
    ]);
    assert!(inject.ok(), "{}", inject.all());
    let second: Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["from"], "+4917099999999");
    assert_eq!(second["text"], "Zurück? ".repeat(40).as_str());
    let _ = listen.kill();
    let _ = listen.wait();
    // Listen deleted what it printed.
    let probe = smsbridge(&["modem", "probe", "--port", &port, "--json"]);
    let info: Value = serde_json::from_str(probe.stdout.trim()).unwrap();
    assert_eq!(info["storage"][0]["used"], 0, "{info}");
    sim.stop();
}

#[test]
fn errors_are_said_in_the_modem_s_terms() {
    let dir = TempDir::new("modem-cli-pin");
    let sim = SimProcess::start(dir.path(), &["--pin", "1234"]);
    let probe = smsbridge(&["modem", "probe", "--port", &sim.port]);
    assert_eq!(
        probe.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        probe.all()
    );
    assert_eq!(
        probe.stderr.trim(),
        "smsbridge: SIM PIN required (set the modem's pin in the configuration)"
    );
    let probe = smsbridge(&[
        "modem", "probe", "--port", &sim.port, "--pin", "1234", "--json",
    ]);
    assert!(probe.ok(), "{}", probe.all());
    sim.stop();
    let missing = smsbridge(&[
        "modem",
        "probe",
        "--port",
        "/nonexistent/ttyUSB9",
        "--timeout",
        "3s",
    ]);
    assert_eq!(missing.status.and_then(|s| s.code()), Some(1));
    assert!(
        missing.stderr.contains("cannot open /nonexistent/ttyUSB9"),
        "{}",
        missing.stderr
    );
}

/// `--timeout` is how long the probe waits: a modem that says nothing is
/// retried (the driver's own 10 s answer deadline passes inside it) until the
/// timeout, and each problem is said on stderr as it happens.
#[test]
fn probe_waits_for_its_timeout_and_says_what_it_sees() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = format!("tcp://{}", silent.local_addr().expect("addr"));
    let holder = std::thread::spawn(move || {
        // Accept and never answer; keep the connections open.
        silent.incoming().take(2).flatten().collect::<Vec<_>>()
    });
    let probe = smsbridge(&["modem", "probe", "--port", &port, "--timeout", "12s"]);
    assert_eq!(
        probe.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        probe.all()
    );
    let lines: Vec<&str> = probe.stderr.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some("smsbridge: the modem did not start up within 12s (last: no answer to AT within 10s)"),
        "{}",
        probe.stderr
    );
    let said = format!("{port}: no answer to AT within 10s; trying again (");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&said) && l.ends_with(" of 12s)")),
        "{}",
        probe.stderr
    );
    drop(holder);
}

/// `sms send` reads the recipient as `contacts add` does: too short, national
/// without a country code and an empty text are bad input (exit 2, one line,
/// nothing sent); a national number with the configuration's country code goes
/// out in international form.
#[test]
fn sms_send_reads_numbers_as_contacts_add_does() {
    let dir = TempDir::new("modem-cli-numbers");
    let sim = SimProcess::start(dir.path(), &[]);
    for (to, text, said) in [
        (
            "+12",
            "hi",
            "smsbridge: invalid number \"+12\": 2 digits is too short for an international number (at least 7)",
        ),
        (
            "015112345678",
            "hi",
            "smsbridge: invalid number \"015112345678\": it is a national number and no default country code is configured (numbers.default_country_code); write it as +<country code>…",
        ),
        (
            "+4915112345678",
            "",
            "smsbridge: the text is empty: nothing to send",
        ),
    ] {
        let r = smsbridge(&["sms", "send", "--port", &sim.port, "--to", to, text]);
        assert_eq!(r.status.and_then(|s| s.code()), Some(2), "{}", r.all());
        assert_eq!(r.stderr, format!("{said}\n"));
    }
    assert!(sim.sent().is_empty(), "{:?}", sim.sent());

    let config = dir.path().join("smsbridge.toml");
    std::fs::write(&config, "[numbers]\ndefault_country_code = \"49\"\n").expect("config");
    let config = config.to_string_lossy().into_owned();
    let r = smsbridge(&[
        "--config",
        &config,
        "sms",
        "send",
        "--port",
        &sim.port,
        "--to",
        "0151 1234 5678",
        "national",
    ]);
    assert!(r.ok(), "{}", r.all());
    let sent = sim.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, "+4915112345678");
    assert_eq!(sent[0].text.as_deref(), Some("national"));
}
