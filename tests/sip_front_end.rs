//! The SIP front end on real sockets (127.0.0.1, port 0) without third-party
//! peers: compact headers, TCP framing, malformed input, and delivery of SMS
//! and IMDNs to a test socket acting as the registered softphone.

mod sip_support;

use std::time::Duration;

use sip_support::{body, header, respond, start, status, tcp_addr, udp_addr};
use smsbridge::bridge::api::{
    DeliveryNotice, DeliveryResult, FrontEnd, ImFrontEnd, InboundId, Recipient, SmsToIm, UnixTime,
};
use smsbridge::store::BodyFormat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

async fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

async fn recv(sock: &UdpSocket) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = timeout(WAIT, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Sends `req` and returns the first final response.
async fn exchange(sock: &UdpSocket, to: std::net::SocketAddr, req: &str) -> String {
    sock.send_to(req.as_bytes(), to).await.unwrap();
    loop {
        let r = recv(sock).await.expect("a response");
        if status(&r) >= 200 {
            return r;
        }
    }
}

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
    // tel: and user=phone Request-URIs survive rsipstack's parser.
    for (i, uri) in [
        "tel:+49-171-5550001",
        "sip:+491715550001@127.0.0.1;user=phone",
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
    let no_tag = message("u2", local, "sip:bob@sms.example", "x").replace(";tag=au2", "");
    assert_eq!(status(&exchange(&sock, to, &no_tag).await), 400);
    let short = message("u3", local, "sip:bob@sms.example", "x")
        .replace("Content-Length: 1", "Content-Length: 10");
    assert_eq!(status(&exchange(&sock, to, &short).await), 400);
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
    assert!(String::from_utf8_lossy(&got).starts_with("SIP/2.0 400 "));
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
async fn register_phone(fe: &smsbridge::sip::SipFrontEnd, phone: &UdpSocket) {
    let local = phone.local_addr().unwrap();
    let reg = format!(
        "REGISTER sip:sms.example SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKreg\r\n\
         From: <sip:alice@sms.example>;tag=r1\r\nTo: <sip:alice@sms.example>\r\nCall-ID: reg@test\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:alice@{local}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    let r = exchange(phone, udp_addr(fe), &reg).await;
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        header(&r, "Contact"),
        Some(format!("<sip:alice@{local}>;expires=600").as_str())
    );
}

fn sms(text: &str, format: BodyFormat) -> SmsToIm {
    SmsToIm {
        inbound: InboundId(1),
        to_user: "sip:alice@sms.example".into(),
        from: "+491715550001".into(),
        from_name: Some("Bob".into()),
        text: text.into(),
        received: UnixTime(1_777_636_800),
        incomplete: false,
        body_format: format,
    }
}

/// Delivers an SMS while the phone answers the first MESSAGE with `code`
/// (or not at all); returns the result and the MESSAGE the phone saw.
async fn deliver_answered(code: Option<u16>, format: BodyFormat) -> (DeliveryResult, String) {
    let (fe, bridge, stop) = start(&["127.0.0.1"]).await;
    let phone = socket().await;
    register_phone(&fe, &phone).await;
    assert_eq!(
        *bridge.online.lock().unwrap(),
        vec!["sip:alice@sms.example".to_owned()]
    );
    let fe2 = fe.clone();
    let delivery = tokio::spawn(async move { fe2.deliver(sms("Hallo 👋", format)).await });
    let mut buf = vec![0u8; 65536];
    let (n, from) = timeout(WAIT, phone.recv_from(&mut buf))
        .await
        .expect("a MESSAGE")
        .unwrap();
    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
    if let Some(code) = code {
        phone
            .send_to(respond(&req, code, "X").as_bytes(), from)
            .await
            .unwrap();
    }
    let result = timeout(Duration::from_secs(10), delivery)
        .await
        .expect("a result")
        .unwrap();
    stop.cancel();
    (result, req)
}

#[tokio::test]
async fn deliver_to_the_registered_contact() {
    let (result, req) = deliver_answered(Some(200), BodyFormat::Plain).await;
    assert_eq!(result, DeliveryResult::Delivered);
    assert!(req.starts_with("MESSAGE sip:alice@127.0.0.1:"), "{req}");
    assert_eq!(
        header(&req, "From").unwrap().split(";tag=").next(),
        Some("\"Bob\" <sip:+491715550001@sms.example>")
    );
    assert_eq!(header(&req, "To"), Some("<sip:alice@sms.example>"));
    assert_eq!(
        header(&req, "Content-Type"),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(body(&req), "Hallo 👋");
}

#[tokio::test]
async fn deliver_as_cpim() {
    let (result, req) = deliver_answered(Some(202), BodyFormat::Cpim).await;
    assert_eq!(result, DeliveryResult::Delivered);
    assert_eq!(header(&req, "Content-Type"), Some("message/cpim"));
    let b = body(&req);
    assert!(b.starts_with("From: \"Bob\" <sip:+491715550001@sms.example>\r\nTo: <sip:alice@sms.example>\r\n\
         DateTime: 2026-05-01T12:00:00Z\r\n\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo 👋"), "{b}");
}

#[tokio::test]
async fn deliver_results_follow_the_response() {
    assert!(matches!(
        deliver_answered(Some(480), BodyFormat::Plain).await.0,
        DeliveryResult::Retry(_)
    ));
    assert!(matches!(
        deliver_answered(Some(404), BodyFormat::Plain).await.0,
        DeliveryResult::Failed(_)
    ));
    // No answer: Timer F (64·T1 = 1.28 s here) ends it with a local 408.
    let started = std::time::Instant::now();
    assert!(matches!(
        deliver_answered(None, BodyFormat::Plain).await.0,
        DeliveryResult::Retry(_)
    ));
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn deliver_without_registration_is_retried_later() {
    let (fe, _bridge, stop) = start(&[]).await;
    assert_eq!(
        fe.deliver(sms("x", BodyFormat::Plain)).await,
        DeliveryResult::Retry("not registered".into())
    );
    assert!(fe.registrations().is_empty());
    stop.cancel();
}

#[tokio::test]
async fn imdn_goes_to_the_sender() {
    let (fe, _bridge, stop) = start(&["127.0.0.1"]).await;
    let phone = socket().await;
    register_phone(&fe, &phone).await;
    assert_eq!(fe.registrations().len(), 1);
    let fe2 = fe.clone();
    let n = DeliveryNotice {
        to_user: "sip:alice@sms.example".into(),
        front_end: FrontEnd::Sip,
        im_message_id: "orig-42".into(),
        recipient: "+491715550001".into(),
        delivered: false,
        at: UnixTime(1_777_636_800),
        reason: Some("unknown subscriber".into()),
    };
    let t = tokio::spawn(async move { fe2.notify(n).await });
    let mut buf = vec![0u8; 65536];
    let (len, from) = timeout(WAIT, phone.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let req = String::from_utf8_lossy(&buf[..len]).into_owned();
    phone
        .send_to(respond(&req, 200, "OK").as_bytes(), from)
        .await
        .unwrap();
    assert_eq!(t.await.unwrap(), DeliveryResult::Delivered);
    assert_eq!(header(&req, "Content-Type"), Some("message/cpim"));
    let b = body(&req);
    for needle in [
        "From: <sip:+491715550001@sms.example>\r\n",
        "To: <sip:alice@sms.example>\r\n",
        "NS: imdn <urn:ietf:params:imdn>\r\n",
        "imdn.Message-ID: ",
        "DateTime: 2026-05-01T12:00:00Z\r\n",
        "Content-Type: message/imdn+xml\r\n",
        "Content-Disposition: notification\r\n",
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>orig-42</message-id>\
         <datetime>2026-05-01T12:00:00Z</datetime>\
         <recipient-uri>sip:+491715550001@sms.example</recipient-uri>\
         <delivery-notification><status><failed/></status></delivery-notification></imdn>",
    ] {
        assert!(b.contains(needle), "missing {needle:?} in {b}");
    }
    stop.cancel();
}

#[tokio::test]
async fn deliver_through_the_upstream_proxy_answers_its_challenge() {
    let proxy = socket().await;
    let proxy_addr = proxy.local_addr().unwrap();
    let (fe, _bridge, stop) = sip_support::start_with(&[], |c| {
        c.upstream = Some(smsbridge::config::Upstream {
            proxy: format!("sip:{proxy_addr};transport=udp"),
            register_as: None,
            username: Some("gateway".into()),
            password: Some("gw-secret".into()),
            expires: 600,
        });
    })
    .await;
    let fe2 = fe.clone();
    let t = tokio::spawn(async move { fe2.deliver(sms("via upstream", BodyFormat::Plain)).await });
    let mut buf = vec![0u8; 65536];
    let (n, from) = timeout(WAIT, proxy.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        first.starts_with("MESSAGE sip:alice@sms.example SIP/2.0\r\n"),
        "{first}"
    );
    let challenge = respond(&first, 407, "Proxy Authentication Required").replace(
        "Content-Length: 0",
        "Proxy-Authenticate: Digest realm=\"upstream\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0",
    );
    proxy.send_to(challenge.as_bytes(), from).await.unwrap();
    // Skip retransmissions of the first request.
    let second = loop {
        let (n, _) = timeout(WAIT, proxy.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("Proxy-Authorization") {
            break m;
        }
    };
    let auth = header(&second, "Proxy-Authorization").unwrap();
    assert!(
        auth.contains("username=\"gateway\"") && auth.contains("realm=\"upstream\""),
        "{auth}"
    );
    assert_eq!(header(&second, "CSeq"), Some("2 MESSAGE"));
    // The digest is right for the upstream password.
    let field = |k: &str| {
        auth.split(&format!("{k}="))
            .nth(1)
            .map(|v| {
                v.trim_start_matches('"')
                    .split(['"', ','])
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .unwrap()
    };
    let ha1 = sip_support::md5_hex("gateway:upstream:gw-secret");
    let ha2 = sip_support::md5_hex(&format!("MESSAGE:{}", field("uri")));
    let expected = sip_support::md5_hex(&format!(
        "{ha1}:n0nce:{}:{}:auth:{ha2}",
        field("nc"),
        field("cnonce")
    ));
    assert_eq!(field("response"), expected);
    proxy
        .send_to(respond(&second, 200, "OK").as_bytes(), from)
        .await
        .unwrap();
    assert_eq!(t.await.unwrap(), DeliveryResult::Delivered);
    stop.cancel();
}

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
async fn deliver_to_a_tcp_contact_reuses_its_connection() {
    let (fe, _bridge, stop) = start(&["127.0.0.1"]).await;
    let mut s = TcpStream::connect(tcp_addr(&fe)).await.unwrap();
    let local = s.local_addr().unwrap();
    let reg = format!(
        "REGISTER sip:sms.example SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtreg\r\n\
         From: <sip:alice@sms.example>;tag=r1\r\nTo: <sip:alice@sms.example>\r\nCall-ID: treg@test\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:alice@{local};transport=tcp>\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(reg.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = timeout(WAIT, s.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"));
    let fe2 = fe.clone();
    let t = tokio::spawn(async move { fe2.deliver(sms("over tcp", BodyFormat::Plain)).await });
    let n = timeout(WAIT, s.read(&mut buf))
        .await
        .expect("a MESSAGE on the same connection")
        .unwrap();
    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(req.starts_with("MESSAGE sip:alice@"), "{req}");
    assert!(
        header(&req, "Via").unwrap().starts_with("SIP/2.0/TCP"),
        "{req}"
    );
    assert_eq!(body(&req), "over tcp");
    s.write_all(respond(&req, 200, "OK").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        timeout(WAIT, t).await.unwrap().unwrap(),
        DeliveryResult::Delivered
    );
    // A subscription made on this connection is notified on it too.
    let sub = format!(
        "SUBSCRIBE sip:bob@sms.example SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtsub\r\n\
         From: <sip:alice@sms.example>;tag=w2\r\nTo: <sip:bob@sms.example>\r\nCall-ID: tsub@test\r\n\
         CSeq: 1 SUBSCRIBE\r\nContact: <sip:alice@{local};transport=tcp>\r\nEvent: presence\r\n\
         Content-Length: 0\r\n\r\n"
    );
    s.write_all(sub.as_bytes()).await.unwrap();
    let mut seen = String::new();
    while !seen.contains("</presence>") {
        let n = timeout(WAIT, s.read(&mut buf))
            .await
            .expect("200 and NOTIFY")
            .unwrap();
        assert!(n > 0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("SIP/2.0 200 OK\r\n"), "{seen}");
    assert!(seen.contains("\r\nNOTIFY sip:alice@"), "{seen}");
    assert!(
        seen.contains("Subscription-State: active;expires=3600"),
        "{seen}"
    );
    stop.cancel();
}

#[tokio::test]
async fn registers_upstream_with_digest() {
    let registrar = socket().await;
    let addr = registrar.local_addr().unwrap();
    let (_fe, _bridge, stop) = sip_support::start_with(&[], |c| {
        c.upstream = Some(smsbridge::config::Upstream {
            proxy: format!("sip:{addr}"),
            register_as: Some("sip:gateway@upstream.example".into()),
            username: None,
            password: Some("gw-secret".into()),
            expires: 120,
        });
    })
    .await;
    let mut buf = vec![0u8; 65536];
    let (n, from) = timeout(WAIT, registrar.recv_from(&mut buf))
        .await
        .expect("a REGISTER")
        .unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        first.starts_with("REGISTER sip:upstream.example SIP/2.0\r\n"),
        "{first}"
    );
    assert!(
        header(&first, "To")
            .unwrap()
            .contains("sip:gateway@upstream.example")
    );
    assert_eq!(header(&first, "Expires"), Some("120"));
    let challenge = respond(&first, 401, "Unauthorized").replace(
        "Content-Length: 0",
        "WWW-Authenticate: Digest realm=\"upstream\", nonce=\"r3g\", algorithm=MD5\r\nContent-Length: 0",
    );
    registrar.send_to(challenge.as_bytes(), from).await.unwrap();
    let second = loop {
        let (n, _) = timeout(WAIT, registrar.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("Authorization:") {
            break m;
        }
    };
    let auth = header(&second, "Authorization").unwrap();
    assert!(
        auth.contains("username=\"gateway\"") && auth.contains("nonce=\"r3g\""),
        "{auth}"
    );
    let ok = respond(&second, 200, "OK").replace(
        "Content-Length: 0",
        &format!(
            "{}\r\nContent-Length: 0",
            header(&second, "Contact")
                .map(|c| format!("Contact: {c};expires=120"))
                .unwrap_or_default()
        ),
    );
    registrar.send_to(ok.as_bytes(), from).await.unwrap();
    stop.cancel();
}
