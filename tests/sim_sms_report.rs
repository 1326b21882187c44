//! `smsbridge sms send --report` against `smsbridge modem sim` with the issue 12
//! behaviours: reports of early parts arriving while later parts are still being
//! sent, and a service centre whose reports carry a zone octet that is not BCD.

mod sim_support;

use std::process::Command;
use std::time::Duration;

use sim_support::{SimProcess, TempDir, run};

const BIN: &str = env!("CARGO_BIN_EXE_smsbridge");
const PHONE: &str = "+4915112345678";

fn send_with_report(port: &str, text: &str) -> sim_support::Ran {
    run(
        Command::new(BIN).args([
            "sms", "send", "--port", port, "--to", PHONE, "--report", text,
        ]),
        Duration::from_secs(120),
    )
}

// Issue 12: "part 1/3: no status report within 10s", exit 1. Each part takes
// 2 s to send and its report comes 1 s after it, so part 1's report arrives
// while part 2 is on its way.
#[test]
fn reports_that_arrive_while_later_parts_are_sent_are_counted() {
    let dir = TempDir::new("sms-report-early");
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--send-delay",
            "2s",
            "--report-delay",
            "1s",
            "--default-phone",
            "silent",
        ],
    );
    let text = "Three parts, reported one by one. ".repeat(12);
    let send = send_with_report(&sim.port, &text);
    assert!(send.ok(), "{}\n{}", send.all(), sim.stderr());
    let lines: Vec<&str> = send.stdout.lines().collect();
    for (i, mr) in [(1, 1), (2, 2), (3, 3)] {
        assert!(
            lines.contains(&format!("part {i}/3: submitted, MR {mr}").as_str()),
            "{}",
            send.stdout
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("part {i}/3: delivered (status 0x00"))),
            "{}",
            send.stdout
        );
    }
    // The first report really did come before the last part was submitted.
    let transcript = sim.transcript();
    let first_cds = transcript.find("+CDS:").expect("a routed report");
    let last_cmgs = transcript.rfind("+CMGS: 3").expect("part 3 submitted");
    assert!(first_cds < last_cmgs, "{transcript}");
}

// Issue 12: a report whose TP-SCTS/TP-DT zone octet is 0xFF was rejected whole
// ("no status report"); it is delivered, with the time shown as invalid.
#[test]
fn a_report_with_a_non_bcd_zone_octet_still_says_delivered() {
    let dir = TempDir::new("sms-report-zone");
    let sim = SimProcess::start(
        dir.path(),
        &["--quirk", "broken-report-zone", "--default-phone", "silent"],
    );
    let send = send_with_report(&sim.port, "zone");
    assert!(send.ok(), "{}\n{}", send.all(), sim.stderr());
    assert!(
        send.stdout.lines().any(
            |l| l.starts_with("part 1/1: delivered (status 0x00 at invalid (")
                && l.ends_with("FF))")
        ),
        "{}",
        send.stdout
    );
}
