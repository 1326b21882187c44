//! The hardware-in-the-loop suite (hw-tests/) against the simulated modem on a
//! PTY, with its own number set so what is sent to it comes back: every check
//! must pass, so the suite cannot rot between lab runs.

mod sim_support;
#[path = "../hw-tests/suite.rs"]
mod suite;

use std::path::PathBuf;
use std::time::Duration;

use sim_support::{SimProcess, TempDir};

const OWN: &str = "+15550123";

#[test]
fn the_hardware_suite_passes_against_the_simulator() {
    let dir = TempDir::new("hw-suite");
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--own-number",
            OWN,
            "--pin",
            "4321",
            "--model",
            "ec25",
            "--send-delay",
            "200ms",
            "--report-delay",
            "500ms",
            "--reply-delay",
            "500ms",
            "--reboot-delay",
            "2s",
        ],
    );
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_smsbridge"));
    let cfg = suite::Config {
        bin: bin.clone(),
        port: sim.port.clone(),
        pin: Some("4321".into()),
        own_number: OWN.into(),
        other_number: Some("+15550199".into()),
        // A lab would cut the power with uhubctl; the simulator reboots on request.
        reset: suite::Reset::Command(vec![
            bin.display().to_string(),
            "modem".into(),
            "sim-fault".into(),
            "--link".into(),
            sim.port.clone(),
            "reboot".into(),
        ]),
        timeout: Duration::from_secs(60),
        work_dir: dir.path().join("work"),
    };
    let report = suite::run(&cfg);
    let md = report.markdown();
    println!("{md}");
    assert_eq!(report.failed(), 0, "{md}\nsimulator log:\n{}", sim.stderr());
    assert_eq!(report.passed(), 11, "{md}");
    assert!(
        md.contains("| 8 | status report after a modem reset | PASS |"),
        "{md}"
    );
    assert!(md.contains("| 1 | probe | PASS |"), "{md}");
    assert!(report.modem.contains("EC25"), "{}", report.modem);
}
