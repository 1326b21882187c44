use super::*;

const MESSAGE: &str = "MESSAGE sip:+491715550001@sms.example SIP/2.0\r\n\
    Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
    Max-Forwards: 70\r\n\
    From: <sip:alice@sms.example>;tag=a1\r\n\
    To: <sip:+491715550001@sms.example>\r\n\
    Call-ID: c1@127.0.0.1\r\n\
    CSeq: 1 MESSAGE\r\n\
    Content-Type: text/plain\r\n\
    Content-Length: 5\r\n\
    \r\n\
    hello";

fn reply(s: Screened) -> String {
    match s {
        Screened::Reply(b) => String::from_utf8(b).unwrap(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn a_good_request_and_responses_pass() {
    assert_eq!(screen(MESSAGE.as_bytes()), Screened::Pass);
    assert_eq!(screen(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"), Screened::Pass);
}

#[test]
fn compact_headers_pass() {
    let compact = "MESSAGE sip:bob@x SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2\r\n\
        f: <sip:alice@x>;tag=a\r\nt: <sip:bob@x>\r\ni: c2\r\nCSeq: 1 MESSAGE\r\n\
        c: text/plain\r\nl: 2\r\n\r\nhi";
    assert_eq!(screen(compact.as_bytes()), Screened::Pass);
}

#[test]
fn unknown_methods_get_501_with_the_request_headers() {
    let foo = MESSAGE
        .replace("MESSAGE sip:", "FOO sip:")
        .replace("1 MESSAGE", "1 FOO");
    let r = reply(screen(foo.as_bytes()));
    assert!(r.starts_with("SIP/2.0 501 Not Implemented\r\n"), "{r}");
    assert!(r.contains("\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n"));
    assert!(r.contains("\r\nFrom: <sip:alice@sms.example>;tag=a1\r\n"));
    assert!(r.contains("\r\nTo: <sip:+491715550001@sms.example>;tag="));
    assert!(r.contains("\r\nCall-ID: c1@127.0.0.1\r\nCSeq: 1 FOO\r\n"));
    assert!(r.contains("\r\nAllow: MESSAGE, OPTIONS, REGISTER, SUBSCRIBE, CANCEL\r\n"));
    assert!(r.ends_with("Content-Length: 0\r\n\r\n"));
    // The same request gets the same answer (a fixed To tag).
    assert_eq!(reply(screen(foo.as_bytes())), r);
}

#[test]
fn malformed_requests_get_400() {
    for (bad, why) in [
        (
            MESSAGE.replace(
                "From: <sip:alice@sms.example>;tag=a1",
                "From: <sip:alice@sms.example>",
            ),
            "from tags",
        ),
        (
            MESSAGE.replace("CSeq: 1 MESSAGE", "CSeq: x MESSAGE"),
            "bad CSeq",
        ),
        (
            MESSAGE.replace("CSeq: 1 MESSAGE", "CSeq: 1 OPTIONS"),
            "bad CSeq",
        ),
        (
            MESSAGE.replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"),
            "bad SIP version",
        ),
        (
            MESSAGE.replace(
                "MESSAGE sip:+491715550001@sms.example SIP/2.0",
                "MESSAGE SIP/2.0",
            ),
            "bad request line",
        ),
        (
            MESSAGE.replace("Content-Length: 5", "Content-Length: 50"),
            "body shorter",
        ),
        (
            MESSAGE.replace("Content-Length: 5", "Content-Length: five"),
            "bad Content-Length",
        ),
        (
            MESSAGE.replace("MESSAGE sip:", "MES{}SAGE sip:"),
            "bad method",
        ),
    ] {
        let r = reply(screen(bad.as_bytes()));
        assert!(r.starts_with("SIP/2.0 400 Bad Request\r\n"), "{why}: {r}");
        assert!(r.contains(why), "{why}: {r}");
    }
    let big = MESSAGE.replace("Content-Length: 5", "Content-Length: 70000");
    assert!(reply(screen(big.as_bytes())).starts_with("SIP/2.0 413 "));
}

#[test]
fn what_cannot_be_answered_is_dropped() {
    for bad in [
        MESSAGE.replace("Call-ID: c1@127.0.0.1\r\n", ""),
        MESSAGE.replace(
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n",
            "",
        ),
        "garbage".to_owned(),
        String::new(),
    ] {
        assert!(matches!(screen(bad.as_bytes()), Screened::Drop(_)), "{bad}");
    }
}

#[test]
fn every_prefix_and_junk_is_handled_without_panic() {
    let bytes = MESSAGE.as_bytes();
    for l in 0..bytes.len() {
        let _ = screen(&bytes[..l]);
    }
    let mut junk = bytes.to_vec();
    for i in (0..junk.len()).step_by(7) {
        junk[i] = 0xff;
        let _ = screen(&junk);
    }
}

fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut f = Framer::default();
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        while let Some(frame) = f.next_frame().unwrap() {
            out.push(frame);
        }
    }
    out
}

#[test]
fn framing_by_content_length_any_split() {
    let two = format!("{MESSAGE}\r\n\r\n{MESSAGE}");
    let input = two.as_bytes();
    let whole = frames(&[input]);
    assert_eq!(
        whole,
        vec![
            Frame::Message(MESSAGE.as_bytes().to_vec()),
            Frame::Ping,
            Frame::Message(MESSAGE.as_bytes().to_vec()),
        ]
    );
    for i in 0..=input.len() {
        assert_eq!(frames(&[&input[..i], &input[i..]]), whole, "cut at {i}");
    }
    assert_eq!(
        frames(&input.chunks(1).collect::<Vec<_>>()),
        whole,
        "bytewise"
    );
}

#[test]
fn framing_errors() {
    let mut f = Framer::default();
    f.push(
        MESSAGE
            .replace("Content-Length: 5", "Content-Length: -1")
            .as_bytes(),
    );
    let e = f.next_frame().unwrap_err();
    assert_eq!((e.code, e.why), (400, "bad Content-Length"));
    let answer = String::from_utf8(reply_to(&e.head.unwrap(), e.code, e.why).unwrap()).unwrap();
    assert!(answer.starts_with("SIP/2.0 400 Bad Request\r\n"));
    let mut f = Framer::default();
    f.push(
        MESSAGE
            .replace("Content-Length: 5", "Content-Length: 999999")
            .as_bytes(),
    );
    assert_eq!(f.next_frame().unwrap_err().code, 413);
    let mut f = Framer::default();
    f.push(&vec![b'a'; 20_000]);
    assert_eq!(f.next_frame().unwrap_err().code, 400);
}
