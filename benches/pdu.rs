//! Decode and encode throughput of the PDU codec, in PDUs per second
//! (criterion's "thrpt" line with `Throughput::Elements`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smsbridge::pdu::{self, Address, Body, DataCoding, EncodeOptions, Pdu, Submit, Tpdu, UserData};

/// Received PDUs from reference/sms.md §6: single and multipart GSM 7-bit, UCS-2,
/// alphanumeric sender, status report.
const CORPUS: &[&str] = &[
    "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
    "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E",
    "07919730071111F10414D04937BD2C7797E9D3E614000811309291024061080442043504410442",
    "07912160130320F6440B916171056429F5000021405291651569320500034C0202E9E8301D44479741F0B09C3E0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10",
    "07914875215652F006360B914892347527F3817003018104808170030181448000",
];

fn decode(c: &mut Criterion) {
    let corpus: Vec<Vec<u8>> = CORPUS.iter().map(|h| pdu::from_hex(h).unwrap()).collect();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function("corpus", |b| {
        b.iter(|| {
            for p in &corpus {
                black_box(Pdu::decode(black_box(p)).unwrap());
            }
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let template = Submit {
        reject_duplicates: false,
        status_report_request: true,
        reply_path: false,
        mr: 0,
        destination: Address::from_number("+491701234567").unwrap(),
        pid: 0,
        dcs: DataCoding::GSM7,
        validity: None,
        user_data: UserData {
            header: None,
            body: Body::Data(Vec::new()),
        },
    };
    let texts = [
        (
            "gsm7_short",
            "See you at 8 at the station, bring the {tickets}!".to_owned(),
        ),
        ("gsm7_3_parts", "Lorem ipsum dolor sit amet [x] ".repeat(14)),
        ("ucs2_emoji_2_parts", "Grüße aus Köln 😁 ".repeat(7)),
    ];
    let mut g = c.benchmark_group("encode");
    for (name, text) in &texts {
        let parts = pdu::plan(text, &EncodeOptions::default()).parts;
        g.throughput(Throughput::Elements(parts as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                let parts =
                    pdu::segment(&template, black_box(text), 7, &EncodeOptions::default()).unwrap();
                for part in parts {
                    let mut out = Vec::with_capacity(180);
                    let p = Pdu {
                        smsc: None,
                        tpdu: Tpdu::Submit(part),
                    };
                    black_box(p.encode(&mut out).unwrap());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
