//! sipp (Debian `sip-tester`) against `smsbridge run` with the simulator on a
//! PTY: a MESSAGE with digest gets 202 and the simulator receives the right
//! PDU; unauthenticated 401; wrong content 415; too long 413; unknown alias 404;
//! modem down 503. Scenarios are written per case into a temp dir.

mod common;
mod daemon_support;
mod sim_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use daemon_support::{Daemon, add_user, write_config};
use sim_support::{SimProcess, TempDir, run};

const BOB: &str = "+4915112345678";

fn sipp_installed() -> bool {
    common::peer_available(
        "sipp",
        "apt-get install sip-tester",
        common::command_succeeds("sh", &["-c", "command -v sipp"]),
    )
}

/// A MESSAGE scenario: first attempt without credentials; when `auth`, answer the
/// 401 with digest and expect `code`; a regexp on the final response is checked.
fn scenario(
    to: &str,
    content_type: &str,
    body: &str,
    auth: bool,
    code: u16,
    check: &str,
) -> String {
    let msg = |cseq: u32, with_auth: bool| {
        format!(
            "  <send retrans=\"500\">\n    <![CDATA[\n      MESSAGE {to} SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n      From: \"Alice\" <sip:alice@sms.test>;tag=[pid]SIPpTag00[call_number]\n      To: <{to}>\n      Call-ID: [call_id]\n      CSeq: {cseq} MESSAGE\n{}      Max-Forwards: 70\n      Content-Type: {content_type}\n      Content-Length: [len]\n\n      {body}\n    ]]>\n  </send>\n",
            if with_auth {
                "      [authentication]\n"
            } else {
                ""
            }
        )
    };
    let check = if check.is_empty() {
        String::new()
    } else {
        format!(
            "    <action><ereg regexp=\"{check}\" search_in=\"msg\" check_it=\"true\" assign_to=\"c\"/></action>\n"
        )
    };
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"daemon\">\n",
    );
    s.push_str(&msg(1, false));
    if auth {
        s.push_str("  <recv response=\"401\" auth=\"true\"/>\n");
        s.push_str(&msg(2, true));
    }
    s.push_str(&format!("  <recv response=\"{code}\">\n{check}  </recv>\n"));
    if !check.is_empty() {
        s.push_str("  <nop><action><log message=\"[$c]\"/></action></nop>\n");
    }
    s.push_str("</scenario>\n");
    s
}

fn sipp(dir: &Path, name: &str, xml: &str, target: SocketAddr) {
    let file = dir.join(format!("{name}.xml"));
    std::fs::write(&file, xml).unwrap();
    let port = daemon_support::free_port().to_string();
    let ran = run(
        Command::new("sipp")
            .current_dir(dir)
            .arg(target.to_string())
            .arg("-sf")
            .arg(&file)
            .args([
                "-m",
                "1",
                "-i",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "u1",
                "-nostdin",
            ])
            .args([
                "-timeout",
                "20",
                "-timeout_error",
                "-recv_timeout",
                "10000",
                "-trace_err",
            ])
            .args(["-au", "alice", "-ap", "secret"])
            .args(
                common::sipp_auth_uri(xml)
                    .map(|u| vec!["-auth_uri".to_owned(), u])
                    .unwrap_or_default(),
            ),
        Duration::from_secs(30),
    );
    assert!(ran.ok(), "sipp {name} failed:\n{}", ran.all());
}

#[test]
fn sipp_scenarios_against_the_daemon() {
    if !sipp_installed() {
        return;
    }
    let dir = TempDir::new("daemon-sipp");
    let sim = SimProcess::start(dir.path(), &["--send-delay", "200ms"]);
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        "[bridge]\nmax_parts = 1\nsender_prefix = \"\"\n",
    );
    add_user(
        &config,
        "sip:alice@sms.test",
        "secret",
        &[(BOB, "Bob", "bob")],
    );
    let d = Daemon::start(dir.path(), config, db, sip, status);

    let to = format!("sip:{BOB}@sms.test");
    sipp(
        dir.path(),
        "accepted",
        &scenario(
            &to,
            "text/plain;charset=UTF-8",
            "Hello from sipp",
            true,
            202,
            "",
        ),
        d.sip,
    );
    assert!(daemon_support::wait_sent(&sim, 1, Duration::from_secs(20)));
    let sent = sim.sent();
    assert_eq!(sent[0].to, BOB);
    assert_eq!(sent[0].text.as_deref(), Some("Hello from sipp"));
    // The PDU as the modem got it: SMS-SUBMIT with SRR, to +4915112345678 (TOA 91).
    let pdu = smsbridge::pdu::decode_hex(&sent[0].pdu, true).unwrap();
    let smsbridge::pdu::Tpdu::Submit(s) = pdu.tpdu else {
        panic!("not a submit")
    };
    assert!(s.status_report_request);
    assert_eq!(s.destination.toa, 0x91);
    assert_eq!(s.destination.to_string(), BOB);

    let challenge =
        "WWW-Authenticate: Digest realm=&quot;smsbridge-test&quot;, nonce=&quot;[^&quot;]+&quot;";
    sipp(
        dir.path(),
        "unauthenticated",
        &scenario(&to, "text/plain", "hi", false, 401, challenge),
        d.sip,
    );
    sipp(
        dir.path(),
        "content",
        &scenario(
            &to,
            "image/png",
            "PNG",
            true,
            415,
            "Accept: text/plain, message/cpim",
        ),
        d.sip,
    );
    sipp(
        dir.path(),
        "too_long",
        &scenario(&to, "text/plain", &"x".repeat(161), true, 413, ""),
        d.sip,
    );
    sipp(
        dir.path(),
        "alias",
        &scenario("sip:nobody@sms.test", "text/plain", "hi", true, 404, ""),
        d.sip,
    );
    // The refused requests left no row in the outbox, so only the accepted
    // one can ever reach the modem.
    let outbox = smsbridge::store::Store::open(&d.db)
        .unwrap()
        .messages(None)
        .unwrap();
    assert_eq!(
        outbox.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["Hello from sipp"]
    );
    assert_eq!(sim.sent().len(), 1);

    // Modem down: the simulator stops answering (hang) and the port vanishes.
    sim.stop();
    let down = sim_support::eventually(Duration::from_secs(40), || {
        let s = d.status_json()?;
        (s["modems"][0]["ready"] == false).then_some(())
    });
    assert!(down.is_some(), "{}", d.log());
    sipp(
        dir.path(),
        "modem_down",
        &scenario(&to, "text/plain", "hi", true, 503, "Retry-After: [0-9]+"),
        d.sip,
    );
}
