//! The SIP front end on real sockets (127.0.0.1, port 0) without third-party
//! peers: compact headers, TCP framing, malformed input, subscription expiry.

mod sip_support;

use std::time::Duration;

use sip_support::{
    WAIT, body, exchange, header, recv, respond, socket, start, status, tcp_addr, udp_addr,
};
use smsbridge::bridge::api::Recipient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn message(branch: &str, local: std::net::SocketAddr, uri: &str, text: &str) -> String {
    format!(
        "MESSAGE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
         From: <sip:alice@sms.example>;tag=a{branch}\r\nTo: <{uri}>\r\nCall-ID: {branch}@test\r\n\
         CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\n\r\n{text}",
        text.len()
    )
}

#[tokio::test]
async fn compact_headers_are_understood() {
    let (fe, bridge, stop) = start(&["127.0.0.1"]).await;
    let sock = socket().await;
    let local = sock.local_addr().unwrap();
    let head = format!(
        "MESSAGE sip:bob@sms.example SIP/2.0\r\nv: SIP/2.0/UDP {local};branch=z9hG4bKcompact\r\n\
         f: \"Alice\" <sip:alice@sms.example>;tag=c1\r\nt: <sip:bob@sms.example>\r\ni: compact@test\r\n\
         CSeq: 7 MESSAGE\r\nc: text/plain; charset=ISO-8859-1\r\nl: 4\r\n\r\n"
    );
    // The body is Latin-1 bytes, not UTF-8.
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(b"\xe9t\xe9!");
    sock.send_to(&bytes, udp_addr(&fe)).await.unwrap();
    let r = recv(&sock).await.expect("a response");
    assert_eq!(status(&r), 202, "{r}");
    assert_eq!(header(&r, "Call-ID"), Some("compact@test"));
    assert_eq!(header(&r, "CSeq"), Some("7 MESSAGE"));
    let got = bridge.submitted.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "été!");
    assert_eq!(got[0].recipient, Recipient::Alias("bob".into()));
    assert_eq!(got[0].sender.display_name.as_deref(), Some("Alice"));
    // tel:, user=phone and escaped Request-URIs survive rsipstack's parser.
    for (i, uri) in [
        "tel:+49-171-5550001",
        "sip:+491715550001@127.0.0.1;user=phone",
        "sip:%2B491715550001@sms.example",
    ]
    .into_iter()
    .enumerate()
    {
        let r = exchange(
            &sock,
            udp_addr(&fe),
            &message(&format!("tel{i}"), local, uri, "t"),
        )
        .await;
        assert_eq!(status(&r), 202, "{uri}: {r}");
        let last = bridge.submitted.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            last.recipient,
            Recipient::Number("+491715550001".into()),
            "{uri}"
        );
    }
    stop.cancel();
}

#[tokio::test]
async fn tcp_is_framed_by_content_length() {
    let (fe, bridge, stop) = start(&["127.0.0.1"]).await;
    let mut s = TcpStream::connect(tcp_addr(&fe)).await.unwrap();
    let local = s.local_addr().unwrap();
    let one = message("t1", local, "sip:+491715550001@sms.example", "first")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let two = message(
        "t2",
        local,
        "sip:bob@sms.example",
        "second\r\n\r\nwith blank lines",
    )
    .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    s.write_all(format!("{one}{two}").as_bytes()).await.unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while got.matches("SIP/2.0 202").count() < 2 {
        let n = timeout(WAIT, s.read(&mut buf))
            .await
            .expect("responses")
            .unwrap();
        assert!(n > 0, "closed early: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let texts: Vec<String> = bridge
        .submitted
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(
        texts.contains(&"first".to_owned())
            && texts.contains(&"second\r\n\r\nwith blank lines".to_owned())
    );
    // A keep-alive ping gets a pong.
    s.write_all(b"\r\n\r\n").await.unwrap();
    let n = timeout(WAIT, s.read(&mut buf))
        .await
        .expect("pong")
        .unwrap();
    assert_eq!(&buf[..n], b"\r\n");
    stop.cancel();
}

#[tokio::test]
async fn malformed_input_gets_400_501_or_nothing_and_the_server_lives_on() {
    let (fe, _bridge, stop) = start(&["127.0.0.1"]).await;
    let sock = socket().await;
    let local = sock.local_addr().unwrap();
    let to = udp_addr(&fe);
    let foo = message("u1", local, "sip:bob@sms.example", "x")
        .replace("MESSAGE sip:", "FOO sip:")
        .replace("1 MESSAGE", "1 FOO");
    let r = exchange(&sock, to, &foo).await;
    assert_eq!(status(&r), 501, "{r}");
    assert!(header(&r, "Allow").unwrap().contains("MESSAGE"));
    // No From tag (RFC 2543, RFC 4475 §3.4.1): taken as any request, and
    // the answer's From is the request's, still without a tag.
    let no_tag = message("u2", local, "sip:bob@sms.example", "x").replace(";tag=au2", "");
    let r = exchange(&sock, to, &no_tag).await;
    assert_eq!(status(&r), 202, "{r}");
    assert!(!header(&r, "From").unwrap().contains("tag"), "{r}");
    let short = message("u3", local, "sip:bob@sms.example", "x")
        .replace("Content-Length: 1", "Content-Length: 10");
    assert_eq!(status(&exchange(&sock, to, &short).await), 400);
    // A head that is not UTF-8 (Latin-1 in Subject): rsipstack alone would
    // drop every header after it and pass the rest on.
    let latin1: Vec<u8> = message("u5", local, "sip:bob@sms.example", "x")
        .replace("Max-Forwards: 70", "Subject: gr\u{1}e")
        .bytes()
        .map(|b| if b == 1 { 0xfc } else { b })
        .collect();
    sock.send_to(&latin1, to).await.unwrap();
    let r = recv(&sock).await.expect("an answer");
    assert_eq!(status(&r), 400, "{r}");
    assert_eq!(
        header(&r, "Warning"),
        Some("399 smsbridge \"header not UTF-8\"")
    );
    for junk in [
        &b"\x00\xff garbage"[..],
        b"MESSAGE\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        &[0xC3; 3000],
    ] {
        sock.send_to(junk, to).await.unwrap();
    }
    assert!(
        timeout(Duration::from_millis(300), sock.recv_from(&mut [0u8; 100]))
            .await
            .is_err()
    );
    // TCP: an unframeable stream is answered (if possible) and closed.
    let mut s = TcpStream::connect(tcp_addr(&fe)).await.unwrap();
    let bad = message("u4", local, "sip:bob@sms.example", "x")
        .replace("Content-Length: 1", "Content-Length: -3");
    s.write_all(bad.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    timeout(WAIT, s.read_to_end(&mut got))
        .await
        .expect("closed")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&got).starts_with("SIP/2.0 400 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // Still serving.
    let options = format!(
        "OPTIONS sip:sms.example SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKo1\r\n\
         From: <sip:alice@sms.example>;tag=o\r\nTo: <sip:sms.example>\r\nCall-ID: o1\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    let r = exchange(&sock, to, &options).await;
    assert_eq!(status(&r), 200);
    assert_eq!(header(&r, "Accept"), Some("text/plain, message/cpim"));
    fe.set_draining(true);
    let r = exchange(&sock, to, &options.replace("z9hG4bKo1", "z9hG4bKo2")).await;
    assert_eq!((status(&r), header(&r, "Retry-After")), (503, Some("5")));
    stop.cancel();
}

/// Registers the test socket as alice's contact (trusted peer: no digest).
#[tokio::test]
async fn subscriptions_end_with_a_terminated_notify() {
    let (fe, _bridge, stop) = start(&["127.0.0.1"]).await;
    let phone = socket().await;
    let local = phone.local_addr().unwrap();
    let sub = format!(
        "SUBSCRIBE sip:bob@sms.example SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKsub\r\n\
         From: <sip:alice@sms.example>;tag=w1\r\nTo: <sip:bob@sms.example>\r\nCall-ID: sub@test\r\n\
         CSeq: 1 SUBSCRIBE\r\nContact: <sip:alice@{local}>\r\nEvent: presence\r\nExpires: 1\r\n\
         Content-Length: 0\r\n\r\n"
    );
    phone.send_to(sub.as_bytes(), udp_addr(&fe)).await.unwrap();
    let mut notifies = Vec::new();
    let mut got_200 = false;
    let mut buf = vec![0u8; 65536];
    while notifies.len() < 2 {
        let (n, from) = timeout(WAIT, phone.recv_from(&mut buf))
            .await
            .expect("messages")
            .unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.starts_with("SIP/2.0 200") {
            assert_eq!(header(&m, "Expires"), Some("1"));
            assert!(header(&m, "To").unwrap().contains(";tag="));
            got_200 = true;
        } else if m.starts_with("NOTIFY ") {
            phone
                .send_to(respond(&m, 200, "OK").as_bytes(), from)
                .await
                .unwrap();
            if !notifies
                .iter()
                .any(|x: &String| header(x, "CSeq") == header(&m, "CSeq"))
            {
                notifies.push(m);
            }
        }
    }
    assert!(got_200);
    assert!(notifies[0].starts_with(&format!("NOTIFY sip:alice@{local} SIP/2.0")));
    assert!(
        header(&notifies[0], "Subscription-State")
            .unwrap()
            .starts_with("active;expires=")
    );
    assert!(body(&notifies[0]).contains("<contact>tel:+491715550001</contact>"));
    assert_eq!(
        header(&notifies[1], "Subscription-State"),
        Some("terminated;reason=timeout")
    );
    stop.cancel();
}

#[tokio::test]
async fn udp_datagrams_are_read_whole_and_a_long_one_is_told_to_use_tcp() {
    let (fe, bridge, stop) = start(&["127.0.0.1"]).await;
    let sock = socket().await;
    let local = sock.local_addr().unwrap();
    // 20,000 bytes of text: one datagram, over rsipstack's 8 KiB UDP buffer.
    let long = "x".repeat(20_000);
    let r = exchange(
        &sock,
        udp_addr(&fe),
        &message("long", local, "sip:bob@sms.example", &long),
    )
    .await;
    assert_eq!(status(&r), 513, "{r}");
    assert_eq!(header(&r, "Call-ID"), Some("long@test"));
    assert!(
        header(&r, "Warning").is_some_and(|w| w.contains("must come over TCP")),
        "{r}"
    );
    assert!(
        bridge.submitted.lock().unwrap().is_empty(),
        "nothing cut was passed on"
    );
    // One that fits still goes through, whole.
    let fits = "y".repeat(7_000);
    let r = exchange(
        &sock,
        udp_addr(&fe),
        &message("fits", local, "sip:bob@sms.example", &fits),
    )
    .await;
    assert_eq!(status(&r), 202, "{r}");
    assert_eq!(bridge.submitted.lock().unwrap()[0].text, fits);
    stop.cancel();
}
