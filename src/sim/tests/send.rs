//! `AT+CMGS` in PDU and text mode, the PDU checks, the busy period, faults.

use super::*;
use crate::sim::{Fault, PhoneBehaviour};

/// gammu's PDU (toolchain.md §4): "hello" to +15551234567, SMSC +447802000332.
const GAMMU_PDU: &str = "079144872000302311000B915155214365F70000FF05E8329BFD06";

#[test]
fn cmgs_prompt_then_mr_exactly() {
    let mut b = Bench::generic();
    b.quiet("");
    assert_eq!(b.send("AT+CMGS=19\r"), "\r\n> ");
    assert_eq!(
        b.send(&format!("{GAMMU_PDU}\x1a")),
        "\r\n+CMGS: 1\r\n\r\nOK\r\n"
    );
    let sent = b.m.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].mr, 1);
    assert_eq!(sent[0].to(), "+15551234567");
    assert_eq!(sent[0].text().as_deref(), Some("hello"));
    assert_eq!(sent[0].pdu_hex, GAMMU_PDU);
    assert_eq!(
        sent[0].smsc.as_ref().map(|a| a.value.as_str()),
        Some("447802000332")
    );
    let log = b.log();
    assert!(log.contains(&LogEntry::Command("AT+CMGS=19".into())));
    assert!(log.contains(&LogEntry::Data(format!("{GAMMU_PDU} ^Z"))));
    assert!(log.contains(&LogEntry::Response("\r\n+CMGS: 1\r\n\r\nOK\r\n".into())));
}

#[test]
fn echo_on_send_looks_like_gammus_log() {
    let mut b = Bench::generic();
    // gammu#438: `AT+CMGS=18\r` answered `AT+CMGS=18\r\r\n> `; the PDU is echoed.
    assert_eq!(b.send("AT+CMGS=19\r"), "AT+CMGS=19\r\r\n> ");
    assert_eq!(
        b.send(&format!("{GAMMU_PDU}\x1a")),
        format!("{GAMMU_PDU}\r\n+CMGS: 1\r\n\r\nOK\r\n")
    );
}

#[test]
fn bad_length_overrun_and_wrong_type_are_refused() {
    let mut b = Bench::generic();
    b.quiet("AT+CMEE=1");
    assert_eq!(
        b.send(&format!("AT+CMGS=18\r{GAMMU_PDU}\x1a")),
        "\r\n> \r\n+CMS ERROR: 304\r\n"
    );
    // One octet more than TP-UDL announces: the decoder would take it, a modem not.
    assert_eq!(
        b.send(&format!("AT+CMGS=20\r{GAMMU_PDU}00\x1a")),
        "\r\n> \r\n+CMS ERROR: 513\r\n"
    );
    assert_eq!(
        b.send("AT+CMGS=3\r00GG11\x1a"),
        "\r\n> \r\n+CMS ERROR: 304\r\n"
    );
    assert_eq!(b.send("AT+CMGS=0\r"), "\r\n+CMS ERROR: 304\r\n");
    // An SMS-DELIVER cannot be sent.
    let deliver = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
    assert_eq!(
        b.send(&format!("AT+CMGS=30\r{deliver}\x1a")),
        "\r\n> \r\n+CMS ERROR: 304\r\n"
    );
    assert!(b.m.sent().is_empty());
}

#[test]
fn esc_aborts_the_prompt() {
    let mut b = Bench::generic();
    b.quiet("");
    assert_eq!(b.send("AT+CMGS=19\r0791"), "\r\n> ");
    assert_eq!(b.send("\x1b"), "\r\nOK\r\n");
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
    assert!(b.m.sent().is_empty());
}

#[test]
fn busy_during_send_delay_and_commands_queue() {
    let mut b = Bench::new(SimConfig {
        send_delay: secs(3),
        ..SimConfig::default()
    });
    b.quiet("");
    assert_eq!(
        b.send(&format!("AT+CMGS=19\r{GAMMU_PDU}\x1aAT+CSQ\r")),
        "\r\n> "
    );
    assert_eq!(b.wait(secs(2)), "");
    assert_eq!(
        b.wait(secs(1)),
        "\r\n+CMGS: 1\r\n\r\nOK\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    );
}

#[test]
fn mr_counts_per_modem_and_wraps_at_255() {
    let mut b = Bench::generic();
    b.quiet("");
    let mut last = String::new();
    for _ in 0..257 {
        last = b.send(&format!("AT+CMGS=19\r{GAMMU_PDU}\x1a"));
    }
    assert_eq!(last, "\r\n> \r\n+CMGS: 1\r\n\r\nOK\r\n");
    let mrs: Vec<u8> = b.m.sent().iter().map(|s| s.mr).collect();
    assert_eq!(&mrs[253..], &[254, 255, 0, 1]);
}

#[test]
fn cms_error_fault() {
    let mut b = Bench::new(SimConfig {
        faults: vec![Fault::CmsErrorRate {
            probability: 1.0,
            code: 38,
        }],
        ..SimConfig::default()
    });
    b.quiet("AT+CMEE=2");
    assert_eq!(
        b.send(&format!("AT+CMGS=19\r{GAMMU_PDU}\x1a")),
        "\r\n> \r\n+CMS ERROR: network out of order\r\n"
    );
    b.m.set_fault(Fault::Clear);
    assert!(
        b.send(&format!("AT+CMGS=19\r{GAMMU_PDU}\x1a"))
            .contains("+CMGS: 1")
    );
    assert_eq!(b.m.sent().len(), 1);
}

#[test]
fn text_mode_send_and_read() {
    let mut b = Bench::generic();
    b.quiet("AT+CMGF=1\nAT+CNMI=2,1,0,0,0");
    assert_eq!(b.send("AT+CMGS=\"+15551234567\"\r"), "\r\n> ");
    assert_eq!(b.send("hi\rthere"), "\r\n> ");
    // The phone echoes at once (zero reply delay): +CMTI follows the result.
    assert_eq!(
        b.send("\x1a"),
        "\r\n+CMGS: 1\r\n\r\nOK\r\n\r\n+CMTI: \"SM\",0\r\n"
    );
    assert_eq!(b.m.sent()[0].text().as_deref(), Some("hi\nthere"));
    assert_eq!(
        b.send("AT+CMGR=0\r"),
        "\r\n+CMGR: \"REC UNREAD\",\"+15551234567\",,\"26/01/01,00:00:00+00\"\r\nhi\nthere\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CMGL=\"ALL\"\r"),
        "\r\n+CMGL: 0,\"REC READ\",\"+15551234567\",,\"26/01/01,00:00:00+00\"\r\nhi\nthere\r\n\r\nOK\r\n"
    );
    // UCS2 character set: number and text in hex, UCS-2 coding from AT+CSMP.
    b.send("AT+CSCS=\"UCS2\"\r");
    b.send("AT+CSMP=17,167,0,8\r");
    let hex = |s: &str| -> String { s.encode_utf16().map(|u| format!("{u:04X}")).collect() };
    assert_eq!(
        b.send(&format!("AT+CMGS=\"{}\"\r", hex("+15557654321"))),
        "\r\n> "
    );
    let out = b.send(&format!("{}\x1a", hex("Привет")));
    assert!(out.starts_with("\r\n+CMGS: 2\r\n\r\nOK\r\n"), "{out}");
    assert_eq!(b.m.sent()[1].to(), "+15557654321");
    assert_eq!(b.m.sent()[1].text().as_deref(), Some("Привет"));
    assert_eq!(
        b.send("AT+CMGR=1\r"),
        format!(
            "\r\n+CMGR: \"REC UNREAD\",\"{}\",,\"26/01/01,00:00:00+00\"\r\n{}\r\n\r\nOK\r\n",
            hex("+15557654321"),
            hex("Привет")
        )
    );
}

#[test]
fn phones_echo_stay_silent_fail_or_lose_the_report() {
    let mut phones = std::collections::BTreeMap::new();
    phones.insert("+15550000001".to_string(), PhoneBehaviour::Silent);
    phones.insert("15550000002".to_string(), PhoneBehaviour::Unreachable);
    phones.insert("+15550000004".to_string(), PhoneBehaviour::NoReport);
    let mut b = Bench::new(SimConfig {
        phones,
        reply_template: "Echo: {text}".into(),
        reply_delay: secs(4),
        ..SimConfig::default()
    });
    b.quiet("AT+CMEE=1\nAT+CNMI=2,1,0,1,0");
    let mut out = String::new();
    for to in [
        "+15550000001",
        "+15550000002",
        "+15550000003",
        "+15550000004",
    ] {
        let (len, hex) = submit_hex(to, "ping", true).remove(0);
        out += &b.send(&format!("AT+CMGS={len}\r{hex}\x1a"));
    }
    assert_eq!(out.matches("+CMGS:").count(), 4);
    out += &b.wait(secs(4));
    // Every phone but the no-report one gets its report.
    let reports = routed_pdus(&out, "+CDS:");
    let status: Vec<(String, u8)> = reports
        .iter()
        .map(|p| match &p.tpdu {
            Tpdu::StatusReport(r) => (r.recipient.value.clone(), r.status.0),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        status,
        [
            ("15550000001".to_string(), 0x00),
            ("15550000002".to_string(), 0x62),
            ("15550000003".to_string(), 0x00)
        ]
    );
    // Only the echoing phone replies, after the reply delay.
    assert_eq!(out.matches("+CMTI: \"SM\",").count(), 1, "{out}");
    let read = b.send("AT+CMGR=0\r");
    let pdu = routed_pdus(&read, "+CMGR:").remove(0);
    let Tpdu::Deliver(d) = pdu.tpdu else {
        panic!("not a deliver")
    };
    assert_eq!(d.originator.value, "15550000003");
    assert_eq!(d.user_data.body.text().as_deref(), Some("Echo: ping"));
}

#[test]
fn cmgw_stores_and_csca_changes_the_service_centre() {
    let mut b = Bench::generic();
    b.quiet("AT+CMEE=1");
    assert_eq!(
        b.send("AT+CSCA?\r"),
        "\r\n+CSCA: \"+15550000000\",145\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+CSCA=\"+447802000332\",145\r"), "\r\nOK\r\n");
    assert_eq!(
        b.send("AT+CSCA?\r"),
        "\r\n+CSCA: \"+447802000332\",145\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send(&format!("AT+CMGW=19\r{GAMMU_PDU}\x1a")),
        "\r\n> \r\n+CMGW: 0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CMGR=0\r"),
        format!("\r\n+CMGR: 2,,19\r\n{GAMMU_PDU}\r\n\r\nOK\r\n")
    );
    assert_eq!(b.send("AT+CMGL=2\r").matches("+CMGL: 0,2,,19").count(), 1);
    // Nothing was sent: CMGW only stores.
    assert!(b.m.sent().is_empty());
    assert_eq!(b.send("AT+CMGW=19,7\r"), "\r\n+CMS ERROR: 304\r\n");
}
