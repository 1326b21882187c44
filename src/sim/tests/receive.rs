//! Mobile-terminated messages: +CMTI and storage, +CMT and +CNMA, +CDS and +CDSI,
//! the TA buffer, storage full, and the echo of a long UCS-2 text.

use super::*;
use crate::pdu::join_text;
use crate::sim::{Fault, PartOrder, StorageSizes};

/// "hello" from +15551234567 at 2026-01-01 00:00:00, SMSC +15550000000.
const HELLO_DELIVER: &str = "07915155000000F0040B915155214365F7000062101000000000\
05E8329BFD06";

#[test]
fn cmti_then_cmgr_then_cmgd() {
    let mut b = Bench::generic();
    b.quiet("AT+CMEE=1\nAT+CNMI=2,1,0,0,0");
    let parts =
        b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder);
    assert_eq!(parts, Ok(1));
    assert_eq!(b.out(), "\r\n+CMTI: \"SM\",0\r\n");
    assert_eq!(
        b.send("AT+CPMS?\r"),
        "\r\n+CPMS: \"SM\",1,20,\"SM\",1,20,\"SM\",1,20\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CMGR=0\r"),
        format!("\r\n+CMGR: 0,,24\r\n{HELLO_DELIVER}\r\n\r\nOK\r\n")
    );
    // Read now.
    assert_eq!(
        b.send("AT+CMGL=4\r"),
        format!("\r\n+CMGL: 0,1,,24\r\n{HELLO_DELIVER}\r\n\r\nOK\r\n")
    );
    assert_eq!(b.send("AT+CMGL=0\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CMGD=0\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CMGR=0\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CMGR=20\r"), "\r\n+CMS ERROR: 321\r\n");
    assert_eq!(b.send("AT+CMGD=20\r"), "\r\n+CMS ERROR: 321\r\n");
    assert_eq!(
        b.send("AT+CMGD=?\r"),
        "\r\n+CMGD: (0-19),(0-4)\r\n\r\nOK\r\n"
    );
}

#[test]
fn cpms_selects_memories_and_reports_use() {
    let mut b = Bench::generic();
    b.quiet("AT+CMEE=1");
    assert_eq!(
        b.send("AT+CPMS=?\r"),
        "\r\n+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CPMS=\"ME\",\"ME\",\"ME\"\r"),
        "\r\n+CPMS: 0,25,0,25,0,25\r\n\r\nOK\r\n"
    );
    b.m.inject_mo(b.now, "+15551234567", "to ME", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(
        b.send("AT+CPMS=\"SR\"\r"),
        "\r\n+CPMS: 0,10,1,25,1,25\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+CPMS=\"SM\",\"SR\"\r"), "\r\n+CMS ERROR: 302\r\n");
    assert_eq!(b.send("AT+CPMS=\"XX\"\r"), "\r\n+CMS ERROR: 302\r\n");
}

#[test]
fn routed_cmt_needs_cnma_before_the_next() {
    let mut b = Bench::generic();
    b.quiet("AT+CMEE=1");
    assert_eq!(b.send("AT+CSMS=1\r"), "\r\n+CSMS: 1,1,1\r\n\r\nOK\r\n");
    b.send("AT+CNMI=2,2,0,0,0\r");
    assert_eq!(b.send("AT+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
    b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder)
        .expect("inject");
    b.m.inject_mo(b.now, "+15551234567", "again", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out(), format!("\r\n+CMT: ,24\r\n{HELLO_DELIVER}\r\n"));
    let out = b.send("AT+CNMA\r");
    assert!(out.starts_with("\r\nOK\r\n\r\n+CMT: ,24\r\n"), "{out}");
    assert_eq!(b.send("AT+CNMA\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
    // Nothing was stored: routed messages bypass storage.
    assert!(b.send("AT+CPMS?\r").contains("\"SM\",0,20"));
}

#[test]
fn routed_cmt_without_phase2_needs_no_ack() {
    let mut b = Bench::generic();
    b.quiet("AT+CNMI=1,2,0,0,0");
    b.m.inject_mo(b.now, "+15551234567", "one", PartOrder::InOrder)
        .expect("inject");
    b.m.inject_mo(b.now, "+15551234567", "two", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out().matches("+CMT: ,").count(), 2);
    assert_eq!(b.send("AT+CMEE=1;+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
}

#[test]
fn missing_cnma_turns_routing_off_and_keeps_the_message() {
    let mut b = Bench::new(SimConfig {
        ack_timeout: secs(30),
        ..SimConfig::default()
    });
    b.quiet("AT+CSMS=1\nAT+CNMI=2,2,0,1,0");
    b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder)
        .expect("inject");
    assert!(b.out().starts_with("\r\n+CMT: ,24"));
    assert_eq!(b.wait(secs(29)), "");
    assert_eq!(b.wait(secs(1)), "");
    assert_eq!(b.send("AT+CNMI?\r"), "\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n");
    assert_eq!(
        b.send("AT+CMGR=0\r"),
        format!("\r\n+CMGR: 0,,24\r\n{HELLO_DELIVER}\r\n\r\nOK\r\n")
    );
    assert!(
        b.log()
            .iter()
            .any(|e| matches!(e, LogEntry::Event(t) if t.starts_with("no +CNMA")))
    );
}

#[test]
fn status_reports_routed_or_stored() {
    let mut b = Bench::new(SimConfig {
        report_delay: secs(5),
        ..SimConfig::default()
    });
    b.quiet("AT+CMEE=1\nAT+CNMI=2,1,0,1,0");
    let (len, hex) = submit_hex("+15551234567", "hi", true).remove(0);
    assert!(
        b.send(&format!("AT+CMGS={len}\r{hex}\x1a"))
            .contains("+CMGS: 1")
    );
    // Drop the echo reply so only the report is left to look at.
    b.out();
    let out = b.wait(secs(5));
    let cds = routed_pdus(&out, "+CDS:");
    let Some(Tpdu::StatusReport(r)) = cds.first().map(|p| p.tpdu.clone()) else {
        panic!("no +CDS in {out:?}");
    };
    assert_eq!((r.mr, r.status.0), (1, 0));
    assert_eq!(r.recipient.value, "15551234567");
    assert_eq!(r.discharge_time.second, 5);
    assert!(out.starts_with("\r\n+CDS: 25\r\n"), "{out}");

    // <ds>=2: stored in SR and announced with +CDSI.
    b.send("AT+CNMI=2,1,0,2,0\r");
    assert!(
        b.send(&format!("AT+CMGS={len}\r{hex}\x1a"))
            .contains("+CMGS: 2")
    );
    assert_eq!(b.wait(secs(5)), "\r\n+CDSI: \"SR\",0\r\n");
    b.send("AT+CPMS=\"SR\"\r");
    let read = b.send("AT+CMGR=0\r");
    let Tpdu::StatusReport(r) = routed_pdus(&read, "+CMGR:").remove(0).tpdu else {
        panic!("{read}")
    };
    assert_eq!(r.mr, 2);

    // <ds>=0: dropped.
    b.send("AT+CNMI=2,1,0,0,0\r");
    b.send(&format!("AT+CMGS={len}\r{hex}\x1a"));
    assert_eq!(b.wait(secs(5)), "");
}

#[test]
fn urcs_wait_for_the_end_of_a_command_or_prompt() {
    let mut b = Bench::generic();
    b.quiet("AT+CNMI=2,1,0,0,0");
    assert_eq!(b.send("AT+CMGS=19\r"), "\r\n> ");
    b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out(), "");
    assert_eq!(b.send("\x1b"), "\r\nOK\r\n\r\n+CMTI: \"SM\",0\r\n");
    // Half a command line typed: held too.
    b.send("AT+CS");
    b.m.inject_mo(b.now, "+15551234567", "again", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out(), "");
    assert_eq!(
        b.send("Q\r"),
        "\r\n+CSQ: 20,99\r\n\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n"
    );
}

#[test]
fn cnmi_mode_0_buffers_in_the_ta_and_bfr_decides() {
    let mut b = Bench::generic();
    b.quiet("AT+CMEE=1\nAT+CNMI=0,1,0,0,0");
    b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out(), "");
    assert_eq!(
        b.send("AT+CNMI=2,1,0,0,0\r"),
        "\r\nOK\r\n\r\n+CMTI: \"SM\",0\r\n"
    );
    b.send("AT+CNMI=0,1,0,0,0\r");
    b.m.inject_mo(b.now, "+15551234567", "again", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.send("AT+CNMI=2,1,0,0,1\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CNMI=2,1,0,0,2\r"), "\r\n+CMS ERROR: 303\r\n");
    assert_eq!(b.send("AT+CNMI=4\r"), "\r\n+CMS ERROR: 303\r\n");
    assert_eq!(
        b.send("AT+CNMI=?\r"),
        "\r\n+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)\r\n\r\nOK\r\n"
    );
}

#[test]
fn full_storage_holds_messages_at_the_network() {
    let mut b = Bench::new(SimConfig {
        storage: StorageSizes {
            sm: 2,
            me: 2,
            sr: 2,
        },
        ..SimConfig::default()
    });
    b.quiet("AT+CMEE=1\nAT+CNMI=2,1,0,0,0");
    b.m.set_fault(Fault::StorageFull);
    assert!(b.send("AT+CPMS?\r").contains("\"SM\",2,2"));
    b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out(), "");
    assert_eq!(b.send("AT+CMGD=1\r"), "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n");
    assert!(b.send("AT+CMGR=1\r").contains(HELLO_DELIVER));
    assert!(
        b.log()
            .iter()
            .any(|e| matches!(e, LogEntry::Network(t) if t.contains("SM full")))
    );
}

#[test]
fn multipart_ucs2_echo_comes_back_whole() {
    let text = "Привет, мир! ".repeat(9); // 117 UTF-16 units: two UCS-2 parts
    let mut b = Bench::new(SimConfig {
        reply_template: "Echo: {text}".into(),
        reply_delay: secs(2),
        ..SimConfig::default()
    });
    b.quiet("AT+CNMI=2,2,0,0,0");
    let parts = submit_hex("+15551234567", &text, false);
    assert_eq!(parts.len(), 2);
    // Last part first: the phone waits for all of them before it answers.
    for (len, hex) in parts.iter().rev() {
        let out = b.send(&format!("AT+CMGS={len}\r{hex}\x1a"));
        assert!(out.contains("+CMGS:"), "{out}");
    }
    let out = b.wait(secs(2));
    let pdus = routed_pdus(&out, "+CMT:");
    assert_eq!(pdus.len(), 2, "{out}");
    let mut bodies = Vec::new();
    for p in &pdus {
        let Tpdu::Deliver(d) = &p.tpdu else {
            panic!("not a deliver")
        };
        assert_eq!(d.originator.value, "15551234567");
        assert_eq!(d.dcs.alphabet(), crate::pdu::Alphabet::Ucs2);
        let c = d.user_data.concat().expect("concatenated");
        bodies.push((c.seq, d.user_data.body.clone()));
    }
    bodies.sort_by_key(|(s, _)| *s);
    let joined = join_text(bodies.iter().map(|(_, b)| b));
    assert_eq!(joined, format!("Echo: {text}"));
}

#[test]
fn injected_parts_arrive_in_the_order_asked() {
    let mut b = Bench::generic();
    b.quiet("AT+CNMI=2,2,0,0,0");
    let text = "x".repeat(400); // three GSM parts
    assert_eq!(
        b.m.inject_mo(b.now, "+15551234567", &text, PartOrder::Reverse),
        Ok(3)
    );
    let seqs: Vec<u8> = routed_pdus(&b.out(), "+CMT:")
        .iter()
        .filter_map(|p| match &p.tpdu {
            Tpdu::Deliver(d) => d.user_data.concat().map(|c| c.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [3, 2, 1]);
    assert!(
        b.m.inject_mo(b.now, "not a number!", "x", PartOrder::InOrder)
            .is_err()
    );
    // An alphanumeric sender is fine.
    assert_eq!(
        b.m.inject_mo(b.now, "BANK", "x", PartOrder::Shuffled),
        Ok(1)
    );
}
