//! Command-line handling, identity, SIM, registration, reboot and hang.

use super::*;
use crate::sim::{Fault, Registration};

#[test]
fn echo_is_on_at_power_up_and_ate0_is_echoed_itself() {
    let mut b = Bench::generic();
    assert_eq!(b.send("AT\r"), "AT\r\r\nOK\r\n");
    assert_eq!(b.send("ATE0\r"), "ATE0\r\r\nOK\r\n");
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
    // The echo of ATE1 itself is not sent: echo was off while it was typed.
    assert_eq!(b.send("ATE1\r"), "\r\nOK\r\n");
    assert_eq!(b.send("at\r\n"), "at\r\r\nOK\r\n\n");
}

#[test]
fn input_split_anywhere_gives_the_same_bytes() {
    let whole = Bench::generic().send("ATE0\rAT+CSQ\rAT+CGMI\r");
    let mut b = Bench::generic();
    let mut bytewise = String::new();
    for c in "ATE0\rAT+CSQ\rAT+CGMI\r".chars() {
        bytewise.push_str(&b.send(&c.to_string()));
    }
    assert_eq!(bytewise, whole);
    assert!(whole.ends_with("\r\n+CSQ: 20,99\r\n\r\nOK\r\n\r\nsmsbridge\r\n\r\nOK\r\n"));
}

#[test]
fn unknown_commands_and_gammu_probes() {
    let mut b = Bench::generic();
    b.quiet("");
    assert_eq!(
        b.send("AT+CSCS=?\r"),
        "\r\n+CSCS: (\"IRA\",\"GSM\",\"UCS2\")\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+CSCS?\r"), "\r\n+CSCS: \"IRA\"\r\n\r\nOK\r\n");
    for probe in [
        "AT+MODE=2",
        "AT+SYNCML=?",
        "AT$TSSPCSW=?",
        "AT^CURC=0",
        "AT^PORTSEL=1",
        "ATD123;",
        "HELLO AT",
    ] {
        let out = b.send(&format!("{probe}\r"));
        let expected = if probe == "HELLO AT" {
            ""
        } else {
            "\r\nERROR\r\n"
        };
        assert_eq!(out, expected, "{probe}");
    }
    assert_eq!(b.send("AT+CHUP=?\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CFUN=1\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CMEE=1\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CSCS=\"UTF-8\"\r"), "\r\n+CME ERROR: 4\r\n");
}

#[test]
fn identity() {
    let mut b = Bench::generic();
    b.quiet("");
    assert_eq!(b.send("AT+CGMI\r"), "\r\nsmsbridge\r\n\r\nOK\r\n");
    assert_eq!(b.send("AT+CGSN\r"), "\r\n490154203237518\r\n\r\nOK\r\n");
    assert_eq!(b.send("AT+CIMI\r"), "\r\n001010123456789\r\n\r\nOK\r\n");
    assert_eq!(
        b.send("AT+CCID\r"),
        "\r\n+CCID: 8900101234567890123\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+GCAP\r"), "\r\n+GCAP: +CGSM\r\n\r\nOK\r\n");
    assert_eq!(
        b.send("ATI\r"),
        "\r\nManufacturer: smsbridge\r\nModel: SIMULATED-MODEM\r\nRevision: smsbridge-sim 1.0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CNUM\r"),
        "\r\n+CNUM: \"\",\"+15550001111\",145\r\n\r\nOK\r\n"
    );
}

#[test]
fn chained_line_as_smstools_sends_it() {
    let mut b = Bench::generic();
    assert_eq!(
        b.send("ATE0+CMEE=1;+CLIP=1;+CREG=2\r"),
        "ATE0+CMEE=1;+CLIP=1;+CREG=2\r\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CREG?;+CSQ\r"),
        "\r\n+CREG: 2,1,\"1A2B\",\"01C3D4E5\",7\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    );
    // An error stops the line: nothing after it runs.
    assert_eq!(b.send("AT+CMEE=7;E1\r"), "\r\n+CME ERROR: 50\r\n");
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
    // Kamailio's init line; its E1 turns echo back on.
    assert_eq!(b.send("AT S7=45 S0=0 L1 V1 X4 &c1 E1 Q0\r"), "\r\nOK\r\n");
    assert_eq!(b.send("ATS7?\r"), "ATS7?\r\r\n045\r\n\r\nOK\r\n");
    // A/ repeats the last line without CR.
    assert_eq!(b.send("A/"), "A/\r\n045\r\n\r\nOK\r\n");
}

#[test]
fn numeric_and_quiet_result_codes() {
    let mut b = Bench::generic();
    b.quiet("ATV0");
    assert_eq!(b.send("AT\r"), "0\r");
    assert_eq!(b.send("AT+CSQ\r"), "+CSQ: 20,99\r\n0\r");
    assert_eq!(b.send("AT+NOPE\r"), "4\r");
    b.send("ATV1Q1\r");
    assert_eq!(b.send("AT\r"), "");
    assert_eq!(b.send("AT+CSQ\r"), "\r\n+CSQ: 20,99\r\n");
}

#[test]
fn cmee_selects_how_errors_look() {
    let mut b = Bench::new(SimConfig {
        pin: Some("1234".into()),
        ..SimConfig::default()
    });
    b.quiet("");
    assert_eq!(b.send("AT+CPMS?\r"), "\r\nERROR\r\n");
    b.send("AT+CMEE=1\r");
    assert_eq!(b.send("AT+CPMS?\r"), "\r\n+CMS ERROR: 311\r\n");
    assert_eq!(b.send("AT+CIMI\r"), "\r\n+CME ERROR: 11\r\n");
    b.send("AT+CMEE=2\r");
    assert_eq!(b.send("AT+CPMS?\r"), "\r\n+CMS ERROR: SIM PIN required\r\n");
    assert_eq!(b.send("AT+CMEE?\r"), "\r\n+CMEE: 2\r\n\r\nOK\r\n");
}

#[test]
fn pin_puk_and_registration() {
    let mut b = Bench::new(SimConfig {
        pin: Some("1234".into()),
        ..SimConfig::default()
    });
    b.quiet("AT+CMEE=1\nAT+CREG=1");
    assert_eq!(b.send("AT+CPIN?\r"), "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    assert_eq!(b.send("AT+CREG?\r"), "\r\n+CREG: 1,0\r\n\r\nOK\r\n");
    assert_eq!(b.send("AT+COPS?\r"), "\r\n+COPS: 0\r\n\r\nOK\r\n");
    // Right PIN: OK, then the registration URC.
    assert_eq!(b.send("AT+CPIN=\"1234\"\r"), "\r\nOK\r\n\r\n+CREG: 1\r\n");
    assert_eq!(b.send("AT+CPIN?\r"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    assert_eq!(
        b.send("AT+COPS?\r"),
        "\r\n+COPS: 0,0,\"SIMNET\",7\r\n\r\nOK\r\n"
    );
    assert_eq!(b.send("AT+CPIN=\"1234\"\r"), "\r\n+CME ERROR: 3\r\n");

    // Three wrong PINs after a reboot lock the SIM: PUK state.
    let mut b = Bench::new(SimConfig {
        pin: Some("1234".into()),
        ..SimConfig::default()
    });
    b.quiet("AT+CMEE=1");
    for _ in 0..3 {
        assert_eq!(b.send("AT+CPIN=\"0000\"\r"), "\r\n+CME ERROR: 16\r\n");
    }
    assert_eq!(b.send("AT+CPIN?\r"), "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n");
    assert_eq!(b.send("AT+CPIN=\"1234\"\r"), "\r\n+CME ERROR: 12\r\n");
    assert_eq!(b.send("AT+CMGL=4\r"), "\r\n+CMS ERROR: 316\r\n");
    assert_eq!(b.send("AT+CPIN=\"12345678\",\"4321\"\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT+CPIN?\r"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
}

#[test]
fn lte_only_network_and_radio_off() {
    let mut b = Bench::new(SimConfig {
        registration: Registration::LteOnly,
        ..SimConfig::default()
    });
    b.quiet("AT+CMEE=1");
    assert_eq!(b.send("AT+CREG?\r"), "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    assert_eq!(b.send("AT+CGREG?\r"), "\r\n+CGREG: 0,0\r\n\r\nOK\r\n");
    assert_eq!(b.send("AT+CEREG?\r"), "\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    let (len, hex) = submit_hex("+15551234567", "hi", false).remove(0);
    assert!(
        b.send(&format!("AT+CMGS={len}\r{hex}\x1a"))
            .contains("+CMGS: 1")
    );
    // Radio off: not registered, sends fail with 331.
    b.send("AT+CFUN=0\r");
    assert_eq!(b.send("AT+CEREG?\r"), "\r\n+CEREG: 0,0\r\n\r\nOK\r\n");
    assert_eq!(b.send("AT+CSQ\r"), "\r\n+CSQ: 99,99\r\n\r\nOK\r\n");
    assert_eq!(
        b.send(&format!("AT+CMGS={len}\r{hex}\x1a")),
        "\r\n> \r\n+CMS ERROR: 331\r\n"
    );
}

#[test]
fn reboot_goes_quiet_then_rdy_and_forgets_settings() {
    let mut b = Bench::new(SimConfig {
        reboot_delay: secs(5),
        ..SimConfig::default()
    });
    b.quiet("AT+CNMI=2,1,0,2,0\nAT+CSMS=1\nAT+CMEE=1");
    assert_eq!(b.send("AT+CFUN=1,1\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT\r"), "");
    assert_eq!(b.wait(secs(4)), "");
    assert_eq!(b.wait(secs(1)), "\r\nRDY\r\n\r\n+CPIN: READY\r\n");
    assert_eq!(
        b.send("AT+CNMI?\r"),
        "AT+CNMI?\r\r\n+CNMI: 0,0,0,0,0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        b.send("AT+CSMS?\r"),
        "AT+CSMS?\r\r\n+CSMS: 0,1,1,1\r\n\r\nOK\r\n"
    );

    // With a PIN the SIM asks for it again; a spontaneous reboot after N lines.
    let mut b = Bench::new(SimConfig {
        pin: Some("1234".into()),
        reboot_delay: secs(1),
        faults: vec![Fault::RebootAfter(2)],
        ..SimConfig::default()
    });
    assert_eq!(b.send("ATE0\r"), "ATE0\r\r\nOK\r\n");
    b.send("AT+CPIN=\"1234\"\r");
    assert_eq!(b.send("AT\r"), "");
    assert_eq!(b.wait(secs(1)), "\r\nRDY\r\n\r\n+CPIN: SIM PIN\r\n");
    assert!(
        b.log()
            .contains(&LogEntry::Event("reboot (fault: reboot-after)".into()))
    );
}

#[test]
fn hang_until_port_reset() {
    let mut b = Bench::new(SimConfig {
        faults: vec![Fault::HangAfter(2)],
        ..SimConfig::default()
    });
    b.quiet("");
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
    assert_eq!(b.send("AT\r"), "");
    assert_eq!(b.send("AT+CSQ\r"), "");
    assert_eq!(b.wait(secs(60)), "");
    b.m.port_reset(b.now);
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
    // Runtime fault: hang on the next line.
    b.m.set_fault(Fault::HangAfter(0));
    assert_eq!(b.send("AT\r"), "");
    b.m.port_reset(b.now);
    assert_eq!(b.send("AT\r"), "\r\nOK\r\n");
}

#[test]
fn runtime_reboot_and_vanish_faults() {
    let mut b = Bench::new(SimConfig {
        reboot_delay: secs(2),
        ..SimConfig::default()
    });
    b.quiet("");
    b.m.set_fault(Fault::Reboot);
    assert_eq!(b.wait(secs(2)), "\r\nRDY\r\n\r\n+CPIN: READY\r\n");
    b.m.set_fault(Fault::VanishAfter {
        commands: 1,
        duration: secs(3),
    });
    assert_eq!(b.m.poll_vanish(), None);
    b.send("AT\r");
    assert_eq!(b.m.poll_vanish(), Some(secs(3)));
    assert_eq!(b.m.poll_vanish(), None);
}

#[test]
fn random_bytes_never_panic_or_wedge() {
    let mut rng = crate::sim::rng::Rng::new(42);
    for model in crate::sim::Model::ALL {
        let mut b = Bench::new(SimConfig {
            model,
            ..SimConfig::default()
        });
        for round in 0..300 {
            let n = rng.below(40);
            let bytes: Vec<u8> = (0..n)
                .map(|_| match rng.below(6) {
                    0 => b'\r',
                    1 => 0x1a,
                    2 => b"AT+CMGS=,;\"?"[rng.below(12)],
                    _ => rng.next_u64() as u8,
                })
                .collect();
            b.m.handle_input(b.now, &bytes);
            if round % 50 == 0 {
                let _ = b.m.inject_mo(
                    b.now,
                    "+15551234567",
                    "noise",
                    super::super::PartOrder::InOrder,
                );
            }
            b.wait(secs(1));
        }
        // Whatever state it is in, ESC, port reset and a plain AT bring it back.
        b.m.port_reset(b.now);
        b.send("\x1b\rATZ\r");
        b.wait(secs(60));
        assert!(b.send("AT\r").ends_with("OK\r\n"), "{model}");
    }
}
