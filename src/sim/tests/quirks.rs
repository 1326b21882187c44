//! The behaviours of real modems that `--quirk` adds to any model (issue 12):
//! banners around answers, a prompt that outlives the port, receive memory ME
//! only, slots from 1, a report with a broken zone octet, and the TA that keeps
//! routing on after a missed acknowledgement.

use super::*;
use crate::pdu::Tpdu;
use crate::sim::{PartOrder, SimQuirk};

fn with(quirks: &[SimQuirk]) -> Bench {
    Bench::new(SimConfig {
        quirks: quirks.to_vec(),
        ..SimConfig::default()
    })
}

#[test]
fn banners_come_around_the_next_answers_after_power_up_and_reboot() {
    let mut b = with(&[SimQuirk::BannersAroundAnswers]);
    assert_eq!(b.out(), "");
    b.quiet("");
    assert_eq!(
        b.send("AT+CGMI\r"),
        "\r\nCall Ready\r\n\r\nsmsbridge\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CGMM\r"),
        "\r\nSMS Ready\r\n\r\nSIMULATED-MODEM\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+CGMM\r"), "\r\nSIMULATED-MODEM\r\n\r\nOK\r\n");
    // After a reboot: RDY on its own, the banners again around answers.
    b.send("AT+CFUN=1,1\r");
    assert_eq!(b.wait(secs(2)), "\r\nRDY\r\n");
    b.quiet("");
    assert_eq!(
        b.send("AT+CGMR\r"),
        "\r\nCall Ready\r\n\r\nsmsbridge-sim 1.0\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n"
    );
}

#[test]
fn a_prompt_stays_open_across_a_port_reset_until_esc() {
    let (len, hex) = submit_hex("+15551234567", "hi", false).remove(0);
    let mut b = with(&[SimQuirk::PromptUntilEsc]);
    b.quiet("");
    assert_eq!(b.send(&format!("AT+CMGS={len}\r")), "\r\n> ");
    b.m.port_reset(b.now);
    // What the next opener types goes into the PDU.
    assert_eq!(b.send("AT\r"), "");
    assert_eq!(b.send("\x1b"), "\r\nOK\r\n");
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
    assert!(b.m.sent().is_empty());
    // Without the quirk a port reset closes the prompt.
    let mut b = Bench::generic();
    b.quiet("");
    b.send(&format!("AT+CMGS={len}\r"));
    b.m.port_reset(b.now);
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
    assert!(
        b.send(&format!("AT+CMGS={len}\r{hex}\x1a"))
            .contains("+CMGS: 1")
    );
}

#[test]
fn receive_memory_me_only_with_unread_messages_on_the_sim() {
    let mut b = Bench::new(SimConfig {
        quirks: vec![SimQuirk::ReceiveMeOnly],
        unread_on_sim: vec![("+15557654321".into(), "waiting".into())],
        ..SimConfig::default()
    });
    b.quiet("AT+CMEE=1\nAT+CNMI=2,1,0,0,0");
    assert_eq!(
        b.send("AT+CPMS=?\r"),
        "\r\n+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"ME\")\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CPMS=\"SM\",\"SM\",\"SM\"\r"),
        "\r\n+CMS ERROR: 302\r\n"
    );
    assert_eq!(
        b.send("AT+CPMS?\r"),
        "\r\n+CPMS: \"SM\",1,20,\"SM\",1,20,\"ME\",0,25\r\n\r\nOK\r\n"
    );
    // New messages go to ME; the one on the SIM waits there unannounced.
    b.m.inject_mo(b.now, "+15551234567", "new", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out(), "\r\n+CMTI: \"ME\",0\r\n");
    let listed = b.send("AT+CMGL=4\r");
    let Tpdu::Deliver(d) = routed_pdus(&listed, "+CMGL: 0,0,").remove(0).tpdu else {
        panic!("{listed}")
    };
    assert_eq!(d.user_data.body.text().as_deref(), Some("waiting"));
}

#[test]
fn slots_from_one_for_any_model() {
    let mut b = with(&[SimQuirk::SlotsFromOne]);
    b.quiet("AT+CMEE=1\nAT+CNMI=2,1,0,0,0");
    b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out(), "\r\n+CMTI: \"SM\",1\r\n");
    assert_eq!(b.send("AT+CMGR=0\r"), "\r\n+CMS ERROR: 321\r\n");
    assert!(b.send("AT+CMGR=1\r").starts_with("\r\n+CMGR: 0,,24\r\n"));
    assert!(b.send("AT+CMGL=4\r").starts_with("\r\n+CMGL: 1,1,,24\r\n"));
    assert_eq!(b.send("AT+CMGD=1\r"), "\r\nOK\r\n");
}

#[test]
fn a_status_report_with_a_zone_octet_that_is_not_bcd() {
    let mut b = with(&[SimQuirk::BrokenReportZone]);
    b.quiet("AT+CNMI=2,1,0,1,0");
    let (len, hex) = submit_hex("+15551234567", "hi", true).remove(0);
    let out = b.send(&format!("AT+CMGS={len}\r{hex}\x1a")) + &b.wait(secs(1));
    let cds = routed_pdus(&out, "+CDS:");
    let Some(Tpdu::StatusReport(r)) = cds.first().map(|p| p.tpdu.clone()) else {
        panic!("no +CDS in {out:?}");
    };
    assert_eq!((r.mr, r.status.0), (1, 0));
    assert!(!r.scts.is_valid() && !r.discharge_time.is_valid());
    // 2026-01-01 00:00:00, zone octet FF; then TP-ST 00.
    assert!(out.contains("621010000000FF621010000000FF00"), "{out}");
}

#[test]
fn a_modem_that_keeps_routing_after_a_missed_ack() {
    let mut b = Bench::new(SimConfig {
        quirks: vec![SimQuirk::KeepRoutingOnMissedAck],
        ack_timeout: secs(30),
        ..SimConfig::default()
    });
    b.quiet("AT+CSMS=1\nAT+CNMI=2,2,0,1,0");
    b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder)
        .expect("inject");
    assert!(b.out().starts_with("\r\n+CMT: ,24"));
    assert_eq!(b.wait(secs(30)), "");
    assert_eq!(b.send("AT+CNMI?\r"), "\r\n+CNMI: 2,2,0,1,0\r\n\r\nOK\r\n");
    b.m.inject_mo(b.now, "+15551234567", "again", PartOrder::InOrder)
        .expect("inject");
    assert!(b.out().starts_with("\r\n+CMT: ,24"));
}
