//! Chat sessions (RFC 4975 MSRP) on the daemon as a process, with the
//! simulated modem on a PTY: alice INVITEs a subscriber, her MSRP SENDs go
//! out as SMS, the phone's reply comes back as a SEND in the same session,
//! a chunked SEND is reassembled with a 200 per chunk, BYE ends it. The
//! RCS-e store-and-forward flow to an offline carol: delivered on REGISTER
//! as MESSAGE, or, when her contact takes sessions, in a session the bridge
//! opens (falling back to MESSAGE when she refuses it). Every MSRP byte of
//! the tests, both ways, is decoded by tshark as the independent parser.

mod common;
mod daemon_support;
mod sim_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use daemon_support::{DOMAIN, Daemon, Ua, add_user, free_port, wait_sent, write_config};
use sim_support::{SimProcess, TempDir};
use smsbridge::msrp::{ByteRange, Chunk, Continuation, Framer, Kind, Method, MsrpUri};

const BOB: &str = "+4915112345678";

struct Setup {
    _dir: TempDir,
    sim: SimProcess,
    daemon: Daemon,
    msrp_port: u16,
}

fn setup(name: &str) -> Setup {
    let dir = TempDir::new(name);
    let sim = SimProcess::start(
        dir.path(),
        &["--send-delay", "200ms", "--reply-delay", "500ms"],
    );
    let msrp_port = free_port();
    let extra = format!(
        "[msrp]\nenabled = true\nlisten = \"127.0.0.1:{msrp_port}\"\nmax_chunk = 2048\n\
handshake_timeout = \"2s\"\n"
    );
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], &extra);
    add_user(
        &config,
        "sip:alice@sms.test",
        "secret",
        &[(BOB, "Bob", "bob")],
    );
    add_user(&config, "sip:carol@sms.test", "carolpw", &[]);
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    Setup {
        _dir: dir,
        sim,
        daemon,
        msrp_port,
    }
}

/// Alice's side of the MSRP connection: every byte written and read is
/// kept for tshark.
struct Client {
    stream: TcpStream,
    framer: Framer,
    ours: MsrpUri,
    theirs: MsrpUri,
    wire: Vec<(bool, Vec<u8>)>,
    tid: u32,
}

impl Client {
    fn connect(theirs: MsrpUri, ours: MsrpUri) -> Client {
        let port = theirs.port().expect("port");
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect MSRP");
        Client::accepted(stream, theirs, ours)
    }

    /// A connection the bridge made to our listener.
    fn accepted(stream: TcpStream, theirs: MsrpUri, ours: MsrpUri) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            stream,
            framer: Framer::new(64 * 1024, 64 * 1024),
            ours,
            theirs,
            wire: Vec::new(),
            tid: 0,
        }
    }

    fn write(&mut self, c: &Chunk) {
        let bytes = c.to_bytes();
        self.stream.write_all(&bytes).expect("write");
        self.wire.push((true, bytes));
    }

    /// The next chunk from the bridge, or `None` when it closed.
    fn read(&mut self) -> Option<Chunk> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = self.framer.next_frame().expect("framing") {
                let c = Chunk::parse(&f).expect("a chunk");
                self.wire.push((false, f));
                return Some(c);
            }
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.framer.push(&buf[..n]),
            }
        }
    }

    fn send_chunks(&mut self, id: &str, text: &str, size: usize) -> Vec<Chunk> {
        self.send_typed(id, "text/plain", text, size)
    }

    /// Sends `text` as one message of this type in chunks of `size`
    /// bytes; the response to each.
    fn send_typed(&mut self, id: &str, content_type: &str, text: &str, size: usize) -> Vec<Chunk> {
        let body = text.as_bytes();
        let total = body.len() as u64;
        let pieces: Vec<&[u8]> = body.chunks(size).collect();
        let mut responses = Vec::new();
        let mut at = 0u64;
        for (i, p) in pieces.iter().enumerate() {
            self.tid += 1;
            let mut c = Chunk::send(
                &format!("alice{:04}", self.tid),
                vec![self.theirs.clone()],
                vec![self.ours.clone()],
            );
            c.message_id = Some(id.into());
            c.byte_range = Some(ByteRange {
                start: at + 1,
                end: Some(at + p.len() as u64),
                total: Some(total),
            });
            c.content_type = Some(content_type.into());
            c.body = p.to_vec();
            c.continuation = if i + 1 == pieces.len() {
                Continuation::End
            } else {
                Continuation::More
            };
            at += p.len() as u64;
            self.write(&c);
            let r = self.read().expect("a response");
            assert_eq!(r.tid, c.tid);
            responses.push(r);
        }
        responses
    }
}

fn offer(ours: &MsrpUri) -> String {
    format!(
        "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message {} TCP/MSRP *\r\na=accept-types:text/plain message/cpim\r\na=path:{ours}\r\n\
a=setup:active\r\n",
        ours.port().unwrap_or(9)
    )
}

/// Our `a=path` from the answer.
fn answer_path(body: &str) -> MsrpUri {
    let line = body
        .lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .expect("a=path in the answer");
    MsrpUri::parse(line.trim()).expect("an MSRP URI")
}

fn code(c: &Chunk) -> u16 {
    match c.kind {
        Kind::Response { code, .. } => code,
        Kind::Request(_) => 0,
    }
}

/// Alice, registered.
fn alice(s: &Setup) -> Ua {
    let mut ua = Ua::new("sip:alice@sms.test", "secret", s.daemon.sip);
    assert_eq!(ua.register(600).status(), 200);
    ua
}

#[test]
fn a_session_to_a_subscriber_carries_sms_both_ways() {
    let s = setup("msrp-subscriber");
    let mut ua = alice(&s);
    let ours = MsrpUri::parse("msrp://127.0.0.1:40001/alic3s3ss;tcp").unwrap();
    let r = ua.request(
        "INVITE",
        &format!("sip:bob@{DOMAIN}"),
        &[("Content-Type", "application/sdp"), ("Supported", "timer")],
        &offer(&ours),
    );
    assert_eq!(r.status(), 200, "{r:?}\n{}", s.daemon.log());
    assert_eq!(r.header("Content-Type"), Some("application/sdp"));
    assert!(r.body.contains("m=message "), "{}", r.body);
    assert!(r.body.contains("a=setup:passive"), "{}", r.body);
    let theirs = answer_path(&r.body);
    assert_eq!(theirs.port(), Some(s.msrp_port));

    // A stranger naming no session is closed without an answer that helps.
    {
        let mut c = Client::connect(
            MsrpUri::tcp("127.0.0.1", s.msrp_port, "n0such5ess10n"),
            ours.clone(),
        );
        c.send_chunks("strangerid", "hi", 100);
        assert!(c.read().is_none(), "closed after the 481");
    }

    let mut c = Client::connect(theirs.clone(), ours.clone());
    let resp = c.send_chunks("msg00001", "Hi Bob, lunch?", 1000);
    assert_eq!(code(&resp[0]), 200);
    assert!(
        wait_sent(&s.sim, 1, Duration::from_secs(20)),
        "{}",
        s.daemon.log()
    );
    let sent = s.sim.sent();
    assert_eq!(sent[0].to, BOB);
    assert_eq!(sent[0].text.as_deref(), Some("alice: Hi Bob, lunch?"));

    // The phone echoes: the reply comes back in this session, not as MESSAGE.
    let reply = c.read().expect("the reply as SEND");
    assert_eq!(reply.kind, Kind::Request(Method::Send));
    assert_eq!(reply.to_path, vec![ours.clone()]);
    assert_eq!(reply.from_path, vec![theirs.clone()]);
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        "alice: Hi Bob, lunch?"
    );
    c.write(&reply.response(200, "OK"));

    // A message in three chunks: 200 for each, one SMS with the whole text.
    let long = "Chunked: ".to_owned() + &"abcdefghij".repeat(5);
    let resp = c.send_chunks("msg00002", &long, 20);
    assert_eq!(resp.len(), 3);
    assert!(resp.iter().all(|r| code(r) == 200), "{resp:?}");
    assert!(wait_sent(&s.sim, 2, Duration::from_secs(20)));
    assert_eq!(
        s.sim.sent()[1].text.as_deref(),
        Some(format!("alice: {long}").as_str())
    );
    let echo = c.read().expect("the second reply");
    c.write(&echo.response(200, "OK"));

    // An unknown method: 501.
    let mut odd = Chunk::send("alice9999", vec![theirs.clone()], vec![ours.clone()]);
    odd.kind = Kind::Request(Method::Other("FOO".into()));
    c.write(&odd);
    assert_eq!(code(&c.read().expect("501")), 501);

    // BYE in the dialog: 200, and the bridge closes the connection.
    let to_tag = r
        .header("To")
        .and_then(|t| t.split(";tag=").nth(1))
        .expect("To tag")
        .to_owned();
    let bye = bye(&ua, &r, &to_tag);
    assert_eq!(bye, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.read().is_some() {
        assert!(Instant::now() < deadline, "still open after BYE");
    }

    tshark_decodes(&c.wire, s.msrp_port);
}

/// TCP loss ends the session: the bridge sends BYE, and the phone's reply,
/// which has no session to go to any more, comes as MESSAGE.
#[test]
fn tcp_loss_ends_the_session_and_the_reply_comes_as_message() {
    let s = setup("msrp-tcp-loss");
    let mut ua = alice(&s);
    let ours = MsrpUri::parse("msrp://127.0.0.1:40001/l0st5ess10n;tcp").unwrap();
    let r = ua.request(
        "INVITE",
        &format!("sip:{BOB}@{DOMAIN}"),
        &[("Content-Type", "application/sdp")],
        &offer(&ours),
    );
    assert_eq!(r.status(), 200, "{r:?}");
    let mut c = Client::connect(answer_path(&r.body), ours);
    assert_eq!(
        code(&c.send_chunks("lost0001", "are you there", 100)[0]),
        200
    );
    drop(c);
    let bye = ua
        .expect_request("BYE", Duration::from_secs(20))
        .expect("a BYE after the TCP loss");
    assert_eq!(bye.header("Call-ID"), r.header("Call-ID"));
    ua.answer(&bye, 200, "OK");
    let m = ua
        .expect_request("MESSAGE", Duration::from_secs(20))
        .expect("the reply as MESSAGE");
    assert_eq!(m.body, "alice: are you there");
    ua.answer(&m, 200, "OK");
    assert!(wait_sent(&s.sim, 1, Duration::from_secs(5)));
}

/// Steps 1 and 2 of the RCS-e store-and-forward flow: alice INVITEs
/// carol, who is not registered, with the first message in the INVITE; the
/// bridge answers for carol and stores it; a second message comes as MSRP
/// SEND. Alice's MSRP side, for tshark.
fn alice_stores_two_for_carol(s: &Setup) -> Client {
    let mut alice = Ua::new("sip:alice@sms.test", "secret", s.daemon.sip);
    let ours = MsrpUri::parse("msrp://127.0.0.1:40001/rcs5ess10n;tcp").unwrap();
    let body = format!(
        "--rcs\r\nContent-Type: application/sdp\r\n\r\n{}\r\n--rcs\r\n\
Content-Type: message/cpim\r\n\r\n{}\r\n--rcs--\r\n",
        offer(&ours),
        alice_cpim("rcs00001", "first, in the INVITE")
    );
    // Step 1: the INVITE carrying the first message; carol is offline.
    let r = alice.request(
        "INVITE",
        &format!("sip:carol@{DOMAIN}"),
        &[("Content-Type", "multipart/mixed;boundary=rcs")],
        &body,
    );
    assert_eq!(r.status(), 200, "{r:?}\n{}", s.daemon.log());
    // Step 2: the second message over MSRP, taken (stored) with a 200.
    let mut c = Client::connect(answer_path(&r.body), ours);
    let second = alice_cpim("rcs00002", "second, over MSRP");
    let resp = c.send_typed("rcs00002", "message/cpim", &second, 1000);
    assert_eq!(code(&resp[0]), 200);
    c
}

/// One of alice's messages to carol as RCS clients send them: CPIM with
/// an IMDN message id, asking for a delivery notification.
fn alice_cpim(id: &str, text: &str) -> String {
    format!(
        "From: <sip:alice@{DOMAIN}>\r\nTo: <sip:carol@{DOMAIN}>\r\n\
NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: {id}\r\n\
DateTime: 2026-11-30T21:00:00Z\r\nimdn.Disposition-Notification: positive-delivery\r\n\r\n\
Content-Type: text/plain;charset=UTF-8\r\n\r\n{text}"
    )
}

/// Step 5 of the flow: the delivery notifications reach alice in her
/// session, as CPIM-wrapped IMDNs from carol, one per message, each
/// answered 200; any other SEND (a reply) is returned, in order of arrival.
fn alice_hears_delivered(alice: &mut Client, s: &Setup, ids: &[&str]) -> Vec<String> {
    let mut delivered = Vec::new();
    let mut others = Vec::new();
    while delivered.len() < ids.len() {
        let send = alice
            .read()
            .unwrap_or_else(|| panic!("IMDNs so far: {delivered:?}\n{}", s.daemon.log()));
        assert_eq!(send.kind, Kind::Request(Method::Send), "{send:?}");
        alice.write(&send.response(200, "OK"));
        let body = String::from_utf8_lossy(&send.body).into_owned();
        if body.contains("message/imdn+xml") {
            assert_eq!(send.content_type.as_deref(), Some("message/cpim"));
            assert!(
                body.contains(&format!("From: <sip:carol@{DOMAIN}>")),
                "{body}"
            );
            assert!(body.contains("<delivered/>"), "{body}");
            let id = ids
                .iter()
                .find(|id| body.contains(&format!("<message-id>{id}</message-id>")))
                .unwrap_or_else(|| panic!("about which message? {body}"));
            assert!(!delivered.contains(id), "once each: {body}");
            delivered.push(*id);
        } else {
            others.push(body);
        }
    }
    others
}

/// The RCS-e store-and-forward flow, step by step, to a carol whose
/// registration says nothing of chat sessions: she registers and gets both
/// as MESSAGE, once each.
#[test]
fn rcs_store_and_forward_to_an_unregistered_user() {
    let s = setup("msrp-rcs");
    let c = alice_stores_two_for_carol(&s);
    // Step 3: carol registers; step 4: both are delivered as MESSAGE.
    let mut carol = Ua::new("sip:carol@sms.test", "carolpw", s.daemon.sip);
    assert_eq!(carol.register(600).status(), 200);
    let mut got = Vec::new();
    while got.len() < 2 {
        let m = carol
            .expect_request("MESSAGE", Duration::from_secs(20))
            .unwrap_or_else(|| panic!("only {got:?}\n{}", s.daemon.log()));
        carol.answer(&m, 200, "OK");
        got.push(m.body);
    }
    // In the order alice sent them, each once.
    assert!(got[0].contains("first, in the INVITE"), "{got:?}");
    assert!(got[1].contains("second, over MSRP"), "{got:?}");
    assert!(
        carol
            .expect_request("MESSAGE", Duration::from_secs(2))
            .is_none(),
        "each once"
    );
    // Step 5: alice, still in her session, is told of each delivery.
    let mut c = c;
    let others = alice_hears_delivered(&mut c, &s, &["rcs00001", "rcs00002"]);
    assert!(others.is_empty(), "{others:?}");
    tshark_decodes(&c.wire, s.msrp_port);
}

/// The same flow to a carol whose Contact carries `+g.oma.sip-im`: the
/// bridge INVITEs her as alice with an offer to connect out, she answers
/// with her own MSRP listener, the bridge connects and SENDs both stored
/// messages in the order alice sent them, each answered 200; nothing comes
/// as MESSAGE. Carol's reply in that session reaches alice in hers. Both
/// sides of MSRP go through tshark.
#[test]
fn rcs_store_and_forward_by_invite_to_a_session_capable_user() {
    let s = setup("msrp-rcs-invite");
    let alice_side = alice_stores_two_for_carol(&s);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("carol's MSRP listener");
    let carol_port = listener.local_addr().unwrap().port();
    let carol_path = MsrpUri::tcp("127.0.0.1", carol_port, "c4r0l5ess10n");

    // Step 3: carol registers with the OMA SIMPLE IM feature tag.
    let carol = carol_takes_sessions(&s);

    // Step 4: the bridge's INVITE, as alice, offering to connect to us.
    let invite = carol
        .expect_request("INVITE", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no INVITE\n{}", s.daemon.log()));
    assert!(
        invite.header("From").is_some_and(|f| f.contains("alice")),
        "{invite:?}"
    );
    assert_eq!(invite.header("Content-Type"), Some("application/sdp"));
    assert!(invite.body.contains("a=setup:active"), "{}", invite.body);
    let bridge_path = answer_path(&invite.body);
    assert_eq!(bridge_path.port(), Some(s.msrp_port));
    let answer = format!(
        "v=0\r\no=carol 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message {carol_port} TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n\
a=path:{carol_path}\r\na=setup:passive\r\n"
    );
    answer_invite(&carol, &invite, &answer);
    let ack = carol
        .expect_request("ACK", Duration::from_secs(10))
        .expect("the ACK of our 200");
    assert_eq!(ack.header("Call-ID"), invite.header("Call-ID"));

    // The bridge connects and sends; carol answers each SEND 200.
    listener.set_nonblocking(false).expect("blocking accept");
    let (stream, _) = listener.accept().expect("the bridge connects");
    let mut c = Client::accepted(stream, bridge_path.clone(), carol_path.clone());
    let mut got = Vec::new();
    while got.len() < 2 {
        let send = c
            .read()
            .unwrap_or_else(|| panic!("only {got:?}\n{}", s.daemon.log()));
        assert_eq!(send.kind, Kind::Request(Method::Send), "{send:?}");
        assert_eq!(send.to_path, vec![carol_path.clone()]);
        assert_eq!(send.from_path, vec![bridge_path.clone()]);
        c.write(&send.response(200, "OK"));
        got.push(String::from_utf8_lossy(&send.body).into_owned());
    }
    assert!(
        got[0].contains("first, in the INVITE") && got[1].contains("second, over MSRP"),
        "in the order sent: {got:?}\n{}",
        s.daemon.log()
    );
    assert!(
        carol
            .expect_request("MESSAGE", Duration::from_secs(2))
            .is_none(),
        "delivered in the session, not again as MESSAGE"
    );
    // Carol answers in her session: it reaches alice in hers.
    let mut reply = Chunk::send(
        "c4r0l0001",
        vec![bridge_path.clone()],
        vec![carol_path.clone()],
    );
    reply.message_id = Some("c4r0lmsg1".into());
    reply.byte_range = Some(ByteRange {
        start: 1,
        end: Some(11),
        total: Some(11),
    });
    reply.content_type = Some("text/plain".into());
    reply.body = b"got both, A".to_vec();
    c.write(&reply);
    assert_eq!(code(&c.read().expect("the reply taken")), 200);
    // Alice hears of both deliveries, and carol's reply, in her session.
    let mut alice_side = alice_side;
    let mut others = alice_hears_delivered(&mut alice_side, &s, &["rcs00001", "rcs00002"]);
    if others.is_empty() {
        let relayed = alice_side
            .read()
            .unwrap_or_else(|| panic!("no reply for alice\n{}", s.daemon.log()));
        assert_eq!(relayed.kind, Kind::Request(Method::Send));
        alice_side.write(&relayed.response(200, "OK"));
        others.push(String::from_utf8_lossy(&relayed.body).into_owned());
    }
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(others[0].contains("got both, A"), "{others:?}");
    tshark_decodes(&alice_side.wire, s.msrp_port);
    tshark_decodes(&c.wire, carol_port);
}

/// Carol's contact says she takes sessions, but her device refuses the
/// INVITE (488): each stored message then comes as MESSAGE, once.
#[test]
fn a_refused_session_invite_falls_back_to_message() {
    let s = setup("msrp-rcs-refused");
    let _alice_side = alice_stores_two_for_carol(&s);
    let carol = carol_takes_sessions(&s);
    let (mut invites, mut got) = (0, Vec::new());
    while got.len() < 2 {
        let m = carol
            .recv(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("only {got:?}\n{}", s.daemon.log()));
        if m.is_request("INVITE") {
            invites += 1;
            carol.answer(&m, 488, "Not Acceptable Here");
        } else if m.is_request("MESSAGE") {
            carol.answer(&m, 200, "OK");
            got.push(m.body);
        }
    }
    assert_eq!(invites, 2, "one session tried per message");
    assert!(
        got[0].contains("first, in the INVITE") && got[1].contains("second, over MSRP"),
        "{got:?}"
    );
    assert!(
        carol
            .expect_request("MESSAGE", Duration::from_secs(2))
            .is_none(),
        "each once"
    );
}

/// Carol, registered with the OMA SIMPLE IM feature tag on her Contact.
fn carol_takes_sessions(s: &Setup) -> Ua {
    let mut carol = Ua::new("sip:carol@sms.test", "carolpw", s.daemon.sip);
    let contact = format!("<{}>;+g.oma.sip-im", carol.contact());
    let r = carol.request(
        "REGISTER",
        &format!("sip:{DOMAIN}"),
        &[("Expires", "600"), ("Contact", &contact)],
        "",
    );
    assert_eq!(r.status(), 200, "{r:?}");
    carol
}

/// Answers the bridge's INVITE 200 with our SDP.
fn answer_invite(ua: &Ua, invite: &daemon_support::SipMsg, sdp: &str) {
    let mut msg = "SIP/2.0 200 OK\r\n".to_owned();
    for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for (k, v) in &invite.headers {
            if k.eq_ignore_ascii_case(h) {
                let v = if h == "To" {
                    format!("{v};tag=c4r0l")
                } else {
                    v.clone()
                };
                msg.push_str(&format!("{h}: {v}\r\n"));
            }
        }
    }
    msg.push_str(&format!(
        "Contact: <{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        ua.contact(),
        sdp.len()
    ));
    ua.send_raw(msg.as_bytes());
}

/// Sends BYE in the INVITE's dialog; the status.
fn bye(ua: &Ua, invite_ok: &daemon_support::SipMsg, to_tag: &str) -> u16 {
    let h = |n: &str| invite_ok.header(n).unwrap_or_default().to_owned();
    let to = h("To");
    let uri = to
        .split('<')
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap_or_default()
        .to_owned();
    let msg = format!(
        "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKbye1;rport\r\nMax-Forwards: 70\r\n\
From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 99 BYE\r\nContent-Length: 0\r\n\r\n",
        ua.local(),
        h("From"),
        if to.contains("tag=") {
            to.clone()
        } else {
            format!("{to};tag={to_tag}")
        },
        h("Call-ID"),
    );
    ua.send_raw(msg.as_bytes());
    loop {
        let m = ua.recv(Duration::from_secs(10)).expect("BYE answered");
        if m.start.starts_with("SIP/2.0") && m.header("CSeq").is_some_and(|c| c.contains("BYE")) {
            return m.status();
        }
    }
}

/// Every MSRP frame of the test through tshark: each decodes as MSRP and
/// nothing is malformed.
fn tshark_decodes(wire: &[(bool, Vec<u8>)], port: u16) {
    if !common::peer_available(
        "tshark",
        "apt-get install tshark",
        common::command_succeeds("tshark", &["--version"]),
    ) {
        return;
    }
    let dir = TempDir::new("msrp-tshark");
    let path = dir.path().join("msrp.pcap");
    std::fs::write(&path, pcap(wire, port)).unwrap();
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args([
            "-d",
            &format!("tcp.port=={port},msrp"),
            "-V",
            "-o",
            "tcp.analyze_sequence_numbers:FALSE",
        ])
        .output()
        .expect("tshark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = text.matches("\nFrame ").count() + usize::from(text.starts_with("Frame "));
    assert_eq!(frames, wire.len(), "{text}");
    let msrp = text
        .lines()
        .filter(|l| *l == "Message Session Relay Protocol")
        .count();
    assert_eq!(msrp, wire.len(), "every frame is MSRP:\n{text}");
    let lines = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("Request Line: MSRP ") || l.starts_with("Response Line: MSRP ")
        })
        .count();
    assert_eq!(lines, wire.len(), "every start line decoded:\n{text}");
    assert!(!text.contains("Malformed"), "{text}");
    assert!(!text.contains("[Expert Info (Error"), "{text}");
    // The decoder saw our transaction ids and end-lines.
    for (_, bytes) in wire {
        let c = Chunk::parse(bytes).unwrap();
        assert!(text.contains(&c.tid), "{} not decoded", c.tid);
    }
}

/// A pcap of the frames: alice on port 40001, the bridge on `port`,
/// sequence numbers running on in each direction.
fn pcap(wire: &[(bool, Vec<u8>)], port: u16) -> Vec<u8> {
    let (mut seq_up, mut seq_down) = (1u32, 1u32);
    let mut segments = Vec::new();
    for (up, data) in wire {
        let len = data.len() as u32;
        let s = if *up {
            let s = common::Segment {
                src: 40_001,
                dst: port,
                seq: seq_up,
                ack: seq_down,
                payload: data,
            };
            seq_up = seq_up.wrapping_add(len);
            s
        } else {
            let s = common::Segment {
                src: port,
                dst: 40_001,
                seq: seq_down,
                ack: seq_up,
                payload: data,
            };
            seq_down = seq_down.wrapping_add(len);
            s
        };
        segments.push(s);
    }
    common::pcap_tcp(&segments)
}
