//! Properties of the segmenter and decoder over arbitrary text and bytes, and the
//! part-boundary cases of TS 23.040 concatenation.

use proptest::prelude::*;
use smsbridge::pdu::{
    self, Address, Alphabet, Body, DataCoding, EncodeError, EncodeOptions, Pdu, Submit, Tpdu,
    UserData, gsm7,
};

fn template() -> Submit {
    Submit {
        reject_duplicates: false,
        status_report_request: false,
        reply_path: false,
        mr: 0,
        destination: Address::from_number("+4915551234567").unwrap(),
        pid: 0,
        dcs: DataCoding::GSM7,
        validity: None,
        user_data: UserData {
            header: None,
            body: Body::Data(Vec::new()),
        },
    }
}

/// One part as it went over the wire: its TPDU octets and what they decode to.
struct Wire {
    octets: Vec<u8>,
    submit: Submit,
}

fn encode(text: &str, reference: u16, opts: &EncodeOptions) -> Result<Vec<Wire>, EncodeError> {
    let parts = pdu::segment(&template(), text, reference, opts)?;
    Ok(parts
        .into_iter()
        .map(|part| {
            let mut octets = Vec::new();
            Tpdu::Submit(part).encode(&mut octets).unwrap();
            let submit = match Tpdu::decode(&octets).unwrap() {
                Tpdu::Submit(s) => s,
                other => panic!("decoded as {other:?}"),
            };
            Wire { octets, submit }
        })
        .collect())
}

/// Unit count per part: septets for GSM 7-bit, UTF-16 units for UCS-2.
fn units(b: &Body) -> usize {
    match b {
        Body::Gsm7 { septets, .. } => septets.len(),
        Body::Ucs2(u) => u.len(),
        Body::Data(d) => d.len(),
    }
}

fn part_units(text: &str, opts: &EncodeOptions) -> Vec<usize> {
    encode(text, 1, opts)
        .unwrap()
        .iter()
        .map(|w| units(&w.submit.user_data.body))
        .collect()
}

/// Checks every wire-level rule on the parts of `text` and returns them.
fn check_parts(text: &str, reference: u16, opts: &EncodeOptions) -> Vec<Wire> {
    let wires = encode(text, reference, opts).unwrap();
    let plan = pdu::plan(text, opts);
    let n = wires.len();
    assert_eq!(plan.parts, n);
    let fits_gsm7 = !opts.force_ucs2 && gsm7::septet_count(text).is_some();
    let expected_alphabet = if fits_gsm7 {
        Alphabet::Gsm7
    } else {
        Alphabet::Ucs2
    };
    assert_eq!(plan.alphabet, expected_alphabet);
    // TPDU header before TP-UDL: FO, MR, DA (2 + 7 octets for 13 digits), PID, DCS.
    let udl_at = 1 + 1 + 2 + 7 + 1 + 1;
    for (i, w) in wires.iter().enumerate() {
        let s = &w.submit;
        assert_eq!(s.dcs.alphabet(), expected_alphabet);
        let udl = usize::from(w.octets[udl_at]);
        let ud = &w.octets[udl_at + 1..];
        assert!(
            ud.len() <= 140,
            "part {i}: {} octets of user data",
            ud.len()
        );
        let header_len = s.user_data.header.as_ref().map_or(0, |h| h.encoded_len());
        match &s.user_data.body {
            Body::Gsm7 { septets, .. } => {
                // UDL counts septets; the UD has exactly ceil(UDL*7/8) octets.
                assert_eq!(ud.len(), (udl * 7).div_ceil(8), "part {i}");
                let limit = match (n, opts.wide_reference) {
                    (1, _) => 160,
                    (_, false) => 153,
                    (_, true) => 152,
                };
                assert!(
                    septets.len() <= limit,
                    "part {i}: {} septets",
                    septets.len()
                );
                assert_ne!(
                    septets.last(),
                    Some(&gsm7::ESC),
                    "part {i} ends in an escape"
                );
                // Fill bits before the text and spare bits after it are zero.
                let fill = (header_len * 8).div_ceil(7) * 7 - header_len * 8;
                if fill > 0 {
                    assert_eq!(ud[header_len] & ((1 << fill) - 1), 0, "part {i} fill bits");
                }
                let used_bits = header_len * 8 + fill + septets.len() * 7;
                let spare = ud.len() * 8 - used_bits;
                if spare > 0 {
                    assert_eq!(ud[ud.len() - 1] >> (8 - spare), 0, "part {i} spare bits");
                }
            }
            Body::Ucs2(u) => {
                assert_eq!(ud.len(), udl, "part {i}");
                let limit = match (n, opts.wide_reference) {
                    (1, _) => 70,
                    (_, false) => 67,
                    (_, true) => 66,
                };
                assert!(u.len() <= limit, "part {i}: {} units", u.len());
                let high = |c: &u16| (0xd800..0xdc00).contains(c);
                let low = |c: &u16| (0xdc00..0xe000).contains(c);
                assert!(
                    !u.last().is_some_and(high),
                    "part {i} ends in a high surrogate"
                );
                assert!(
                    !u.first().is_some_and(low),
                    "part {i} starts with a low surrogate"
                );
            }
            Body::Data(_) => panic!("part {i} is data"),
        }
        // Each part is readable on its own: no replacement characters appear.
        let part_text = s.user_data.body.text().unwrap();
        if !text.contains('\u{fffd}') {
            assert!(!part_text.contains('\u{fffd}'), "part {i}: {part_text:?}");
        }
        match s.user_data.concat() {
            None => assert_eq!(n, 1),
            Some(c) => {
                assert!(n > 1);
                let r = if opts.wide_reference {
                    reference
                } else {
                    reference & 0xff
                };
                assert_eq!(
                    (c.reference, c.total, c.seq, c.wide),
                    (r, n as u8, i as u8 + 1, opts.wide_reference)
                );
            }
        }
    }
    let joined = pdu::join_text(wires.iter().map(|w| &w.submit.user_data.body));
    assert_eq!(joined, text);
    wires
}

fn gsm_chars() -> Vec<char> {
    (0u32..0x2100)
        .filter_map(char::from_u32)
        .filter(|&c| gsm7::encode_char(c).is_some())
        .collect()
}

fn text_strategy() -> impl Strategy<Value = String> {
    let gsm = prop::sample::select(gsm_chars());
    let emoji = prop::sample::select(vec!['😁', '👍', '🇩', '🇪', '𝄞', '🙈']);
    let ext = prop::sample::select(vec!['[', ']', '{', '}', '~', '^', '|', '\\', '€', '\u{c}']);
    prop_oneof![
        prop::collection::vec(prop_oneof![4 => gsm.clone(), 1 => ext.clone()], 0..800),
        prop::collection::vec(
            prop_oneof![3 => gsm, 1 => ext, 1 => emoji, 1 => any::<char>()],
            0..400
        ),
    ]
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parts_decode_back_to_the_text(
        text in text_strategy(),
        reference in any::<u16>(),
        force_ucs2 in any::<bool>(),
        wide_reference in any::<bool>(),
    ) {
        let opts = EncodeOptions { force_ucs2, wide_reference, ..EncodeOptions::default() };
        check_parts(&text, reference, &opts);
    }

    #[test]
    fn arbitrary_octets_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = Pdu::decode(&bytes) {
            let _ = p.tpdu.user_data().map(|u| u.body.text());
        }
        let _ = Tpdu::decode(&bytes);
    }

    #[test]
    fn arbitrary_hex_never_panics(s in "[0-9A-Fa-f]{0,120}|.{0,40}") {
        let _ = pdu::decode_hex(&s, true);
        let _ = pdu::decode_hex(&s, false);
    }
}

#[test]
fn gsm7_boundaries() {
    let o = EncodeOptions::default();
    let a = |n| "a".repeat(n);
    assert_eq!(part_units(&a(160), &o), [160]);
    assert_eq!(part_units(&a(161), &o), [153, 8]);
    assert_eq!(part_units(&a(306), &o), [153, 153]);
    assert_eq!(part_units(&a(307), &o), [153, 153, 1]);
    // The escape pair of ']' would straddle septets 153/154: it moves to part 2.
    let text = a(152) + "]" + &a(10);
    assert_eq!(part_units(&text, &o), [152, 12]);
    check_parts(&text, 9, &o);
    // 159 + ']' = 161 septets: no longer one SMS.
    let text = a(159) + "]";
    assert_eq!(part_units(&text, &o), [153, 8]);
    // 158 + ']' = 160 septets: still one SMS.
    assert_eq!(part_units(&(a(158) + "]"), &o), [160]);
    let wide = EncodeOptions {
        wide_reference: true,
        ..o
    };
    assert_eq!(part_units(&a(305), &wide), [152, 152, 1]);
}

#[test]
fn ucs2_boundaries() {
    let o = EncodeOptions::default();
    let zh = |n| "ж".repeat(n);
    assert_eq!(part_units(&zh(70), &o), [70]);
    assert_eq!(part_units(&zh(71), &o), [67, 4]);
    assert_eq!(part_units(&zh(134), &o), [67, 67]);
    assert_eq!(part_units(&zh(135), &o), [67, 67, 1]);
    // An emoji needs units 67 and 68: it moves whole to part 2.
    let text = zh(66) + "😁" + &zh(10);
    assert_eq!(part_units(&text, &o), [66, 12]);
    check_parts(&text, 300, &o);
    // 69 units + an emoji = 71 units: two parts; 68 + emoji = 70: one.
    assert_eq!(part_units(&(zh(68) + "😁"), &o), [70]);
    assert_eq!(part_units(&(zh(69) + "😁"), &o), [67, 4]);
    let wide = EncodeOptions {
        wide_reference: true,
        ..o
    };
    assert_eq!(part_units(&zh(133), &wide), [66, 66, 1]);
}

#[test]
fn part_limit() {
    let o = EncodeOptions::default();
    let max = "a".repeat(255 * 153);
    assert_eq!(pdu::plan(&max, &o).parts, 255);
    assert_eq!(
        pdu::segment(&template(), &(max + "a"), 0, &o).unwrap_err(),
        EncodeError::TooManyParts {
            needed: 256,
            max: 255
        }
    );
    let limited = EncodeOptions { max_parts: 3, ..o };
    assert_eq!(
        pdu::segment(&template(), &"a".repeat(500), 0, &limited).unwrap_err(),
        EncodeError::TooManyParts { needed: 4, max: 3 }
    );
}

#[test]
fn alphabet_choice() {
    let o = EncodeOptions::default();
    assert_eq!(pdu::plan("Grüße {x}", &o).alphabet, Alphabet::Gsm7);
    assert_eq!(pdu::plan("Grüße {x}", &o).units, 11);
    assert_eq!(pdu::plan("ça va", &o).alphabet, Alphabet::Ucs2);
    assert_eq!(pdu::plan("😁", &o).units, 2);
    let forced = EncodeOptions {
        force_ucs2: true,
        ..o
    };
    assert_eq!(pdu::plan("abc", &forced).alphabet, Alphabet::Ucs2);
    assert_eq!(pdu::plan("", &o).parts, 1);
}

#[test]
fn flash_keeps_class_zero() {
    let mut t = template();
    t.dcs = DataCoding::new(Alphabet::Gsm7, Some(0));
    let parts = pdu::segment(&t, "hi", 0, &EncodeOptions::default()).unwrap();
    assert_eq!(parts[0].dcs, DataCoding(0x10));
    let parts = pdu::segment(&t, "hi 😁", 0, &EncodeOptions::default()).unwrap();
    assert_eq!(parts[0].dcs, DataCoding(0x18));
}
