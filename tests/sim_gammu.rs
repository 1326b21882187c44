//! gammu, a mature third-party AT client, against `smsbridge modem sim` over its
//! PTY: identify, send, and read what the simulated network delivered.

mod common;
mod sim_support;

use std::process::Command;
use std::time::Duration;

use sim_support::{Ran, SimProcess, TempDir, run};

fn gammu_available() -> bool {
    common::peer_available(
        "gammu",
        "apt-get install gammu",
        common::command_succeeds("gammu", &["--version"]),
    )
}

fn gammu(rc: &std::path::Path, args: &[&str]) -> Ran {
    run(
        Command::new("gammu").arg("-c").arg(rc).args(args),
        Duration::from_secs(90),
    )
}

fn gammurc(dir: &TempDir, sim: &SimProcess) -> std::path::PathBuf {
    let rc = dir.path().join("gammurc");
    std::fs::write(
        &rc,
        format!(
            "[gammu]\ndevice = {}\nconnection = at115200\n",
            sim.link.display()
        ),
    )
    .expect("gammurc");
    rc
}

#[test]
fn gammu_identifies_sends_and_reads_through_the_simulator() {
    if !gammu_available() {
        return;
    }
    let dir = TempDir::new("gammu");
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--imei",
            "356938035643809",
            "--reply-template",
            "Echo: {text}",
        ],
    );
    let rc = gammurc(&dir, &sim);

    let id = gammu(&rc, &["identify"]);
    assert!(
        id.ok(),
        "gammu identify failed:\n{}\n{}",
        id.all(),
        sim.transcript()
    );
    for want in ["smsbridge", "356938035643809", "001010123456789"] {
        assert!(
            id.stdout.contains(want),
            "{want} missing in:\n{}",
            id.stdout
        );
    }

    let send = gammu(
        &rc,
        &[
            "sendsms",
            "TEXT",
            "+15551234567",
            "-text",
            "Hello from gammu",
        ],
    );
    assert!(
        send.ok(),
        "gammu sendsms failed:\n{}\n{}",
        send.all(),
        sim.transcript()
    );
    assert!(send.all().contains("message reference=1"), "{}", send.all());
    let sent = sim.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, "+15551234567");
    assert_eq!(sent[0].text.as_deref(), Some("Hello from gammu"));
    let transcript = sim.transcript();
    assert!(transcript.contains("-> AT+CMGS="), "{transcript}");
    assert!(transcript.contains(&sent[0].pdu), "{transcript}");

    let inject = run(
        Command::new(env!("CARGO_BIN_EXE_smsbridge"))
            .args(["modem", "sim-inject", "--link"])
            .arg(&sim.link)
            .args(["--from", "+15559876543", "Injected über the control socket"]),
        Duration::from_secs(20),
    );
    assert!(inject.ok(), "{}", inject.all());
    assert_eq!(inject.stdout.trim(), "injected 1 part(s)");

    let all = gammu(&rc, &["getallsms"]);
    assert!(
        all.ok(),
        "gammu getallsms failed:\n{}\n{}",
        all.all(),
        sim.transcript()
    );
    for want in [
        "Injected über the control socket",
        "+15559876543",
        // The echo phone's reply to what gammu sent.
        "Echo: Hello from gammu",
    ] {
        assert!(
            all.stdout.contains(want),
            "{want} missing in:\n{}",
            all.stdout
        );
    }

    let link = sim.link.clone();
    assert!(sim.stop().success());
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "the link is removed on exit"
    );
}

#[test]
fn gammu_copes_with_huawei_noise_and_a_pin() {
    if !gammu_available() {
        return;
    }
    let dir = TempDir::new("gammu-huawei");
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--model",
            "huawei-e3372",
            "--noise-interval",
            "1s",
            "--pin",
            "1234",
        ],
    );
    let rc = gammurc(&dir, &sim);
    let id = gammu(&rc, &["identify"]);
    assert!(
        id.ok(),
        "gammu identify failed:\n{}\n{}",
        id.all(),
        sim.transcript()
    );
    assert!(id.stdout.contains("E3372"), "{}", id.stdout);
    let status = gammu(&rc, &["getsecuritystatus"]);
    assert!(
        status.stdout.contains("Waiting for PIN"),
        "{}",
        status.all()
    );
    let pin = gammu(&rc, &["entersecuritycode", "PIN", "1234"]);
    assert!(pin.ok(), "{}\n{}", pin.all(), sim.transcript());
    let send = gammu(&rc, &["sendsms", "TEXT", "+15551234567", "-text", "noisy"]);
    assert!(
        send.ok(),
        "gammu sendsms failed:\n{}\n{}",
        send.all(),
        sim.transcript()
    );
    let transcript = sim.transcript();
    assert!(transcript.contains("-> AT^CURC=0"), "{transcript}");
    assert!(transcript.contains("^RSSI:"), "{transcript}");
    assert_eq!(sim.sent()[0].text.as_deref(), Some("noisy"));
}
