//! SMS and IMDNs from the bridge to users, on real sockets (127.0.0.1): a
//! test socket plays the registered softphone, the upstream proxy or the
//! upstream registrar.

mod sip_support;

use std::time::Duration;

use sip_support::{WAIT, body, header, register_phone, respond, sms, socket, start, tcp_addr};
use smsbridge::bridge::api::{DeliveryNotice, DeliveryResult, FrontEnd, ImFrontEnd, UnixTime};
use smsbridge::store::BodyFormat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

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
        displayed: false,
        recipient_user: None,
        to_user: "sip:alice@sms.example".into(),
        front_end: FrontEnd::Sip,
        im_message_id: "orig-42".into(),
        recipient: "+491715550001".into(),
        delivered: false,
        neutral: false,
        at: UnixTime(1_777_636_800),
        cause: Some(smsbridge::bridge::api::FailureCause::Rejected),
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
