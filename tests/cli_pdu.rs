//! `smsbridge pdu decode|encode` as a user runs them: the binary as a process.

use std::process::{Command, Output};

use serde_json::{Value, json};

fn smsbridge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .args(args)
        .output()
        .expect("run smsbridge")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn decode_json(hex: &str, extra: &[&str]) -> Value {
    let mut args = vec!["pdu", "decode", "--json", hex];
    args.extend_from_slice(extra);
    serde_json::from_str(&stdout(&smsbridge(&args))).unwrap()
}

#[test]
fn decodes_a_deliver_as_json() {
    let v = decode_json(
        "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
        &[],
    );
    assert_eq!(
        v,
        json!({
            "type": "deliver", "smsc": "+2782913593", "from": "+27821234567",
            "timestamp": "2013-03-08T15:02:16+02:00", "pid": 0, "dcs": 0, "class": null,
            "encoding": "gsm7", "text": "Test2", "concat": null, "udh": []
        })
    );
}

#[test]
fn decodes_concatenation_and_udh() {
    let v = decode_json(
        "07913306000000F0640B913306000000F00000610110129303801B050003CA0202C26150301C0E8741C170381C0605C3E17018",
        &[],
    );
    assert_eq!(v["concat"], json!({"ref": 202, "total": 2, "seq": 2}));
    assert_eq!(v["udh"], json!([{"iei": 0, "data": "CA0202"}]));
    assert_eq!(v["text"], "aa Aaaaa Aaaaa Aaaaa");
}

#[test]
fn decodes_a_status_report() {
    let v = decode_json(
        "07914875215652F006360B914892347527F3817003018104808170030181448000",
        &[],
    );
    assert_eq!(
        v,
        json!({
            "type": "status-report", "smsc": "+84571265250", "mr": 54,
            "recipient": "+84294357723", "timestamp": "2018-07-30T10:18:40+02:00",
            "discharge_time": "2018-07-30T10:18:44+02:00", "status": 0, "outcome": "delivered"
        })
    );
}

#[test]
fn decodes_without_smsc_field() {
    let v = decode_json("0006D60B911326880736F4111011719551401110117195714000", &[]);
    assert_eq!(v["smsc"], Value::Null);
    let v = decode_json(
        "06D60B911326880736F4111011719551401110117195714000",
        &["--no-smsc"],
    );
    assert_eq!(
        (v["type"].as_str(), v["mr"].as_u64()),
        (Some("status-report"), Some(214))
    );
}

#[test]
fn decodes_a_flash_ucs2_submit_in_plain_text() {
    let out = stdout(&smsbridge(&[
        "pdu",
        "decode",
        "07914400000000F01100099121436587F90008F40A4E16754C60A8597DFF01",
    ]));
    assert!(
        out.starts_with("type: submit\nsmsc: +44000000000\nto: +123456789\n"),
        "{out}"
    );
    assert!(out.contains("\ntext: 世界您好！\n"), "{out}");
    assert!(out.contains("\nencoding: ucs2\n"), "{out}");
}

#[test]
fn invalid_input_exits_2_with_one_line() {
    for hex in [
        "zz",
        "0043010C910661345542F60008A0050003000301306F3044",
        "07912143658709F1040B918100551512F20000111010214365000BE8329BFD4697D9EC37",
    ] {
        let o = smsbridge(&["pdu", "decode", hex]);
        assert_eq!(o.status.code(), Some(2), "{hex}");
        assert!(o.stdout.is_empty());
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("smsbridge: invalid PDU: "), "{err}");
    }
    let err = String::from_utf8(
        smsbridge(&[
            "pdu",
            "decode",
            "0043010C910661345542F60008A0050003000301306F3044",
        ])
        .stderr,
    )
    .unwrap();
    assert_eq!(
        err,
        "smsbridge: invalid PDU: TP-MTI at octet 1: reserved message type (TP-MTI 3)\n"
    );
}

#[test]
fn encodes_a_single_part_exactly() {
    let out = stdout(&smsbridge(&[
        "pdu",
        "encode",
        "--to",
        "+27820001111",
        "Hello World!",
    ]));
    assert_eq!(
        out,
        "24 0001000B917228001011F100000CC8329BFD065DDF72363904\n"
    );
}

#[test]
fn encodes_options_into_the_right_fields() {
    let out = stdout(&smsbridge(&[
        "pdu",
        "encode",
        "--to",
        "+491701234567",
        "--smsc",
        "+491710760000",
        "--report",
        "--flash",
        "--validity",
        "24h",
        "--mr",
        "9",
        "hi",
    ]));
    let (len, hex) = out.trim().split_once(' ').unwrap();
    assert_eq!(len, "16");
    let v = decode_json(hex, &[]);
    assert_eq!(v["type"], "submit");
    assert_eq!(v["smsc"], "+491710760000");
    assert_eq!(v["to"], "+491701234567");
    assert_eq!(v["mr"], 9);
    assert_eq!(v["status_report_request"], true);
    assert_eq!(v["class"], 0);
    assert_eq!(v["validity"], "1day");
    assert_eq!(v["text"], "hi");
}

#[test]
fn encodes_multipart_with_the_given_reference() {
    let text = "Grüße 😁 ".repeat(12);
    let out = stdout(&smsbridge(&[
        "pdu",
        "encode",
        "--to",
        "0171234567",
        "--concat-ref",
        "77",
        &text,
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let mut joined = String::new();
    for (i, line) in lines.iter().enumerate() {
        let (len, hex) = line.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), hex.len() / 2 - 1);
        let v = decode_json(hex, &[]);
        assert_eq!(v["to"], "0171234567");
        assert_eq!(v["encoding"], "ucs2");
        assert_eq!(v["concat"], json!({"ref": 77, "total": 2, "seq": i + 1}));
        joined.push_str(v["text"].as_str().unwrap());
    }
    assert_eq!(joined, text);
    let forced = stdout(&smsbridge(&[
        "pdu", "encode", "--to", "1234", "--ucs2", "abc",
    ]));
    assert_eq!(forced, "15 00010004812143000806006100620063\n");
}

#[test]
fn encode_rejects_bad_numbers_and_too_long_text() {
    for args in [
        vec!["pdu", "encode", "--to", "+49-17x", "hi"],
        vec![
            "pdu",
            "encode",
            "--to",
            "+491701234567",
            "--smsc",
            "abc",
            "hi",
        ],
    ] {
        let o = smsbridge(&args);
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.starts_with("smsbridge: invalid address"), "{err}");
    }
    let long = "a".repeat(255 * 153 + 1);
    let o = smsbridge(&["pdu", "encode", "--to", "+1555", &long]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(o.stderr).unwrap(),
        "smsbridge: text needs 256 parts, at most 255 allowed\n"
    );
}
