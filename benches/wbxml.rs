//! A typical CSP 1.3 Login-Request in WBXML: its size beside the XML form
//! (printed once), and the decode and encode rates in bytes and documents
//! per second, with the XML reader on the same message for comparison.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smsbridge::imps::csp::{self, Mode, Outgoing};
use smsbridge::imps::wbxml::{self, Version};

/// The Login-Request a phone sends: password, client id, time to live.
fn login_xml() -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><WV-CSP-Message xmlns=\"{}\"><Session>\
         <SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor><Transaction>\
         <TransactionDescriptor><TransactionMode>Request</TransactionMode>\
         <TransactionID>nok5110#00001</TransactionID></TransactionDescriptor>\
         <TransactionContent xmlns=\"{}\"><Login-Request><UserID>wv:alice@sms.example.org</UserID>\
         <ClientID><URL>http://www.nokia.com/im/s60</URL><MSISDN>+4915112345678</MSISDN></ClientID>\
         <Password>correct horse battery</Password><TimeToLive>1800</TimeToLive>\
         <SessionCookie>wv:nokia.1234567890</SessionCookie></Login-Request></TransactionContent>\
         </Transaction></Session></WV-CSP-Message>",
        csp::CSP_NS,
        csp::TRC_NS
    )
    .into_bytes()
}

fn login(c: &mut Criterion) {
    let xml = login_xml();
    let m = csp::parse(&xml).unwrap();
    let root = csp::envelope(&Outgoing {
        session_id: m.session_id,
        transaction_id: m.transaction_id,
        mode: Mode::Request,
        poll: false,
        primitive: m.primitive,
    });
    let bin = wbxml::encode(&root, Version::V13).unwrap();
    println!(
        "Login-Request: {} bytes as WBXML, {} bytes as XML ({}%)",
        bin.len(),
        xml.len(),
        bin.len() * 100 / xml.len()
    );
    let tree = wbxml::decode(&bin).unwrap().root;

    let mut g = c.benchmark_group("login_request_bytes");
    g.throughput(Throughput::Bytes(bin.len() as u64));
    g.bench_function("wbxml_decode", |b| {
        b.iter(|| black_box(wbxml::decode(black_box(&bin)).unwrap()))
    });
    g.bench_function("wbxml_encode", |b| {
        b.iter(|| black_box(wbxml::encode(black_box(&tree), Version::V13).unwrap()))
    });
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("xml_parse", |b| {
        b.iter(|| black_box(csp::parse(black_box(&xml)).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("login_request_documents");
    g.throughput(Throughput::Elements(1));
    g.bench_function("wbxml_decode", |b| {
        b.iter(|| black_box(wbxml::decode(black_box(&bin)).unwrap()))
    });
    g.bench_function("wbxml_encode", |b| {
        b.iter(|| black_box(wbxml::encode(black_box(&tree), Version::V13).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, login);
criterion_main!(benches);
