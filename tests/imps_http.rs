//! The IMPS HTTP binding on 127.0.0.1: a Login and a SendMessage over real
//! HTTP, and hostile input (entity expansion, external entities, deep
//! nesting, a 10 MB body, invalid UTF-8, truncated WBXML, the SMS binding, GET)
//! answered with a CSP error or an HTTP 4xx, quickly.

mod imps_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use imps_support::{Answer, read, request, send, serve_rig};

/// One HTTP/1.1 exchange: status and body.
fn http(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer and close before the whole body is written.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = match out.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => out[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

fn post(addr: SocketAddr, body: &[u8]) -> (u16, Vec<u8>) {
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.wv.csp+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    http(addr, &head, body)
}

async fn csp(addr: SocketAddr, body: Vec<u8>) -> Answer {
    let (status, b) = tokio::task::spawn_blocking(move || post(addr, &body))
        .await
        .unwrap();
    read(status, &b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_send_over_http() {
    let (addr, r) = serve_rig().await;
    let a = csp(
        addr,
        request(None, "<Login-Request><UserID>wv:alice@sms.test</UserID><Password>secret</Password></Login-Request>"),
    )
    .await;
    assert_eq!((a.http, a.code()), (200, Some(200)), "{}", a.raw);
    let sid = a.text(&["SessionID"]).unwrap().to_owned();
    assert!(sid.len() >= 4);
    let a = csp(addr, request(Some(&sid), &send("Bob", "over HTTP", false))).await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = csp(addr, request(Some(&sid), "<Polling-Request/>")).await;
    assert!(a.empty && a.http == 200);
    drop(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_a_csp_error_or_a_4xx_quickly() {
    let (addr, _r) = serve_rig().await;
    let t = Instant::now();
    let billion = b"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]><WV-CSP-Message>&lol3;</WV-CSP-Message>".to_vec();
    let a = csp(addr, billion).await;
    assert_eq!(
        (a.http, a.primitive.name.as_str(), a.code()),
        (200, "Status", Some(400))
    );
    assert!(
        a.text(&["Result", "Description"])
            .unwrap()
            .contains("DOCTYPE")
    );

    let external =
        b"<?xml version=\"1.0\"?><!DOCTYPE x SYSTEM \"file:///etc/passwd\"><WV-CSP-Message/>"
            .to_vec();
    assert_eq!(csp(addr, external).await.code(), Some(400));
    let undefined = request(
        None,
        "<Login-Request><UserID>&xxe;</UserID></Login-Request>",
    );
    let a = csp(addr, undefined).await;
    assert_eq!(a.code(), Some(400));
    assert!(a.raw.contains("unknown entity"));

    let deep = format!(
        "<WV-CSP-Message>{}{}</WV-CSP-Message>",
        "<a>".repeat(4_000),
        "</a>".repeat(4_000)
    );
    assert_eq!(csp(addr, deep.into_bytes()).await.code(), Some(400));

    let mut bad_utf8 = request(
        None,
        "<Login-Request><UserID>wv:alice@sms.test</UserID><Password>X</Password></Login-Request>",
    );
    let at = bad_utf8.iter().position(|&b| b == b'X').unwrap();
    bad_utf8[at] = 0xff;
    let a = csp(addr, bad_utf8).await;
    assert_eq!(a.code(), Some(400));
    assert!(a.raw.contains("UTF-8"));

    // 10 MB announced: 413 before the body is read.
    let big = vec![b'<'; 10 * 1024 * 1024];
    let t_big = Instant::now();
    let (status, _) = tokio::task::spawn_blocking(move || post(addr, &big))
        .await
        .unwrap();
    assert_eq!(status, 413);
    assert!(t_big.elapsed() < Duration::from_secs(5), "413 quickly");

    // Truncated WBXML: a CSP Status 400, itself in WBXML.
    let (status, body) = tokio::task::spawn_blocking(move || {
        http(addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.wv.csp+wbxml\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", b"\x03\x01\x6a")
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let doc = smsbridge::imps::wbxml::decode(&body).expect("a WBXML answer");
    let m = smsbridge::imps::csp::from_root(doc.root).unwrap();
    assert_eq!(m.primitive.text_at(&["Result", "Code"]), Some("400"));
    let (status, _) = tokio::task::spawn_blocking(move || {
        http(addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.wv.csp.sms\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", b"abc")
    })
    .await
    .unwrap();
    assert_eq!(status, 415, "the SMS binding is not supported");
    let (status, _) = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"",
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 405);
    assert!(t.elapsed() < Duration::from_secs(20));
}
