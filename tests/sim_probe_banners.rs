//! `smsbridge modem probe` against `smsbridge modem sim --model sim800 --quirk
//! banners-around-answers`: the identity comes from the answers, not from the
//! start-up banners around them (issue 12: `"manufacturer":"Call Ready"`).

mod sim_support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sim_support::{SimProcess, TempDir, run};

#[test]
fn probe_names_the_modem_not_its_banners() {
    let dir = TempDir::new("probe-banners");
    let sim = SimProcess::start(
        dir.path(),
        &["--model", "sim800", "--quirk", "banners-around-answers"],
    );
    let probe = run(
        Command::new(env!("CARGO_BIN_EXE_smsbridge"))
            .args(["modem", "probe", "--json", "--port", &sim.port]),
        Duration::from_secs(60),
    );
    assert!(probe.ok(), "{}\n{}", probe.all(), sim.stderr());
    let info: Value = serde_json::from_str(probe.stdout.trim()).unwrap();
    assert_eq!(info["manufacturer"], "SIMCOM_Ltd", "{info}");
    assert_eq!(info["model"], "SIMCOM_SIM800L", "{info}");
    assert_eq!(info["quirks"], "simcom-sim800", "{info}");
    // The banners really were inside the identity answers.
    let transcript = sim.transcript();
    assert!(
        transcript.contains("Call Ready\\r\\n\\r\\nSIMCOM_Ltd"),
        "{transcript}"
    );
}
