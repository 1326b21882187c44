//! Model quirks from reference/sms.md §7: Huawei noise, SIM800's CNMA prompt,
//! EC25's +CDSI that names the wrong memory, SIM7600's unreadable SR, Wavecom's
//! missing OK after +CPIN?.

use super::*;
use crate::sim::{Model, PartOrder};

fn model(model: Model) -> Bench {
    Bench::new(SimConfig {
        model,
        ..SimConfig::default()
    })
}

#[test]
fn huawei_noise_until_curc_0() {
    let mut b = model(Model::HuaweiE3372);
    assert_eq!(b.out(), "\r\n^BOOT:35323129,0,0,0,26\r\n");
    b.quiet("");
    assert_eq!(b.wait(secs(3)), "\r\n^RSSI:20\r\n");
    assert_eq!(b.wait(secs(3)), "\r\n^HCSQ:\"LTE\",60,52,106,24\r\n");
    // wdoekes/asterisk-chan-dongle#143: noise between +CSQ and OK.
    let first = b.send("AT+CSQ\r");
    let second = b.send("AT+CSQ\r");
    let noisy = [first, second];
    assert!(noisy.contains(&"\r\n+CSQ: 20,99\r\n\r\n^RSSI:20\r\n\r\nOK\r\n".to_string()));
    assert!(noisy.contains(&"\r\n+CSQ: 20,99\r\n\r\nOK\r\n".to_string()));
    assert_eq!(b.send("AT^CURC=0\r"), "\r\nOK\r\n");
    assert_eq!(b.wait(secs(30)), "");
    for _ in 0..3 {
        assert_eq!(b.send("AT+CSQ\r"), "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
    }
    assert_eq!(b.send("AT^PORTSEL=1\r"), "\r\nOK\r\n");
    assert_eq!(
        b.send("AT^ICCID?\r"),
        "\r\n^ICCID: 8900101234567890123\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+CGMI\r"), "\r\nhuawei\r\n\r\nOK\r\n");
}

#[test]
fn sim800_cnma_prompt_and_one_based_indexes() {
    let mut b = model(Model::Sim800);
    b.quiet("AT+CMEE=1");
    assert_eq!(
        b.send("AT+CNMI=?\r"),
        "\r\n+CNMI: (0-3),(0-3),(0,2),(0,1),(0,1)\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+CNMI=2,1,0,2,0\r"), "\r\n+CMS ERROR: 303\r\n");
    b.send("AT+CNMI=2,1,0,1,0\r");
    b.m.inject_mo(b.now, "+15551234567", "hello", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out(), "\r\n+CMTI: \"SM\",1\r\n");
    assert_eq!(b.send("AT+CMGR=0\r"), "\r\n+CMS ERROR: 321\r\n");
    assert!(b.send("AT+CMGR=1\r").starts_with("\r\n+CMGR: 0,,24\r\n"));
    // Phase 2+: AT+CNMA opens a prompt that ESC closes (RoEdAl's workaround).
    b.send("AT+CSMS=1;+CNMI=2,2,0,0,0\r");
    b.m.inject_mo(b.now, "+15551234567", "one", PartOrder::InOrder)
        .expect("inject");
    b.m.inject_mo(b.now, "+15551234567", "two", PartOrder::InOrder)
        .expect("inject");
    assert_eq!(b.out().matches("+CMT: ,").count(), 1);
    assert_eq!(b.send("AT+CNMA\r"), "\r\n> ");
    let out = b.send("\x1b");
    assert!(out.starts_with("\r\nOK\r\n\r\n+CMT: ,"), "{out}");
}

#[test]
fn ec25_announces_reports_in_sm_but_stores_them_in_sr() {
    let mut b = model(Model::Ec25);
    b.quiet("AT+CNMI=2,1,0,2,0");
    b.m.set_fault(crate::sim::Fault::Clear);
    let (len, hex) = submit_hex("+15551234567", "hi", true).remove(0);
    let out = b.send(&format!("AT+CMGS={len}\r{hex}\x1a"));
    // chan_quectel PR #75: +CDSI: "SM",0 although the report is in SR.
    assert!(out.contains("\r\n+CDSI: \"SM\",0\r\n"), "{out}");
    // The echo reply sits in SM slot 0; drop it to show what the bug looks like.
    b.send("AT+CMGD=0,4\r");
    assert_eq!(b.send("AT+CMGR=0\r"), "\r\nOK\r\n");
    b.send("AT+CPMS=\"SR\"\r");
    assert!(b.send("AT+CMGR=0\r").starts_with("\r\n+CMGR: 0,,25\r\n"));
    assert_eq!(b.send("AT+CGMI\r"), "\r\nQuectel\r\n\r\nOK\r\n");
}

#[test]
fn ec25_qind_noise_between_commands() {
    let mut b = model(Model::Ec25);
    b.quiet("");
    assert_eq!(b.wait(secs(10)), "\r\n+QIND: \"csq\",20,99\r\n");
    b.send("AT+QINDCFG=\"csq\",0\r");
    assert_eq!(b.wait(secs(60)), "");
}

#[test]
fn sim7600_cannot_read_sr() {
    let mut b = model(Model::Sim7600);
    b.quiet("AT+CMEE=1\nAT+CNMI=2,1,0,2,0");
    let (len, hex) = submit_hex("+15551234567", "hi", true).remove(0);
    let out = b.send(&format!("AT+CMGS={len}\r{hex}\x1a"));
    assert!(out.contains("\r\n+CDSI: \"SR\",0\r\n"), "{out}");
    // babca/python-gsmmodem#106.
    assert_eq!(
        b.send("AT+CPMS=\"SR\"\r"),
        "\r\n+CPMS: 1,10,1,20,1,20\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+CMGR=0\r"), "\r\n+CMS ERROR: 321\r\n");
}

#[test]
fn wavecom_cpin_has_no_ok() {
    let mut b = model(Model::Wavecom);
    b.quiet("");
    assert_eq!(b.send("AT+CPIN?\r"), "\r\n+CPIN: READY\r\n");
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
}

#[test]
fn model_names_parse() {
    for m in Model::ALL {
        assert_eq!(m.name().parse::<Model>(), Ok(m));
    }
    assert!("nokia".parse::<Model>().is_err());
}
