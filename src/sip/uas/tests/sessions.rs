//! Chat sessions (`invite.rs`): INVITE with an MSRP offer, the first
//! message riding in it, BYE, limits and the offers we cannot answer.

use super::*;
use crate::sip::invite::{SessionConfig, Sessions};

const SUBSCRIBER: &str = "sip:+491715550001@sms.example";

fn offer() -> String {
    "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message 7654 TCP/MSRP *\r\na=accept-types:text/plain\r\n\
a=path:msrp://127.0.0.1:7654/jshA7weztas;tcp\r\n"
        .into()
}

fn session_uas(max_sessions: usize) -> (Uas, Arc<Fake>, Arc<Mutex<Sessions>>) {
    let (u, fake) = uas();
    let sessions = Arc::new(Mutex::new(Sessions::new(SessionConfig {
        host: "127.0.0.1".into(),
        port: 2855,
        max_sessions,
        max_sessions_per_address: 8,
        idle_timeout: 600,
        limits: crate::msrp::Limits {
            max_header_bytes: 4096,
            max_chunk_body: 4096,
            max_message: 65536,
            max_chunks: 16,
            max_messages: 2,
        },
    })));
    u.enable_msrp(Arc::clone(&sessions));
    (u, fake, sessions)
}

fn invite(headers: &[(&str, &str)], body: &str) -> Request {
    let mut h = vec![("Content-Type", "application/sdp")];
    h.extend_from_slice(headers);
    request("INVITE", SUBSCRIBER, &h, body)
}

#[tokio::test]
async fn an_msrp_offer_is_answered_with_our_path_and_bye_ends_it() {
    let (u, fake, sessions) = session_uas(4);
    let r = authed(&u, invite(&[("Session-Expires", "1800")], &offer())).await;
    assert_eq!(r.reply.code, 200, "{r:?}");
    assert_eq!(r.reply.header("Content-Type"), Some("application/sdp"));
    assert_eq!(
        r.reply.header("Session-Expires"),
        Some("1800;refresher=uac")
    );
    let sdp = String::from_utf8(r.reply.body.clone()).unwrap();
    assert!(sdp.contains("m=message 2855 TCP/MSRP *\r\n"), "{sdp}");
    assert!(sdp.contains("a=path:msrp://127.0.0.1:2855/"), "{sdp}");
    assert_eq!(r.reply.to_tag.as_deref(), Some("tag1"));
    assert!(fake.submitted.lock().unwrap().is_empty(), "no message yet");
    assert_eq!(sessions.lock().unwrap().len(), 1);

    // A re-INVITE in the dialog refreshes and answers the same.
    let again = request(
        "INVITE",
        SUBSCRIBER,
        &[
            ("To", &format!("<{SUBSCRIBER}>;tag=tag1")),
            ("Content-Type", "application/sdp"),
        ],
        &offer(),
    );
    let r2 = u.handle(&again, NOW + 10).await;
    assert_eq!((r2.reply.code, &r2.reply.body), (200, &r.reply.body));

    let bye = request(
        "BYE",
        SUBSCRIBER,
        &[("To", &format!("<{SUBSCRIBER}>;tag=tag1"))],
        "",
    );
    assert_eq!(u.handle(&bye, NOW).await.reply.code, 200);
    assert_eq!(sessions.lock().unwrap().len(), 0);
    assert_eq!(u.handle(&bye, NOW).await.reply.code, 481, "gone");
}

#[tokio::test]
async fn the_first_message_may_ride_in_the_invite() {
    let (u, fake, _) = session_uas(4);
    let cpim = "From: <sip:alice@sms.example>\r\nTo: <sip:+491715550001@sms.example>\r\n\r\n\
Content-Type: text/plain\r\n\r\nfirst one";
    let body = format!(
        "--xx\r\nContent-Type: application/sdp\r\n\r\n{}\r\n--xx\r\nContent-Type: message/cpim\r\n\r\n{cpim}\r\n--xx--\r\n",
        offer()
    );
    let r = authed(
        &u,
        invite(&[("Content-Type", "multipart/mixed; boundary=xx")], &body),
    )
    .await;
    assert_eq!(r.reply.code, 200, "{r:?}");
    let sent = fake.submitted.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text, "first one");
    assert_eq!(sent[0].recipient, Recipient::Number("+491715550001".into()));

    // Refused: the refusal answers the INVITE and no session is made.
    *fake.refuse.lock().unwrap() = Some(Refusal::OptedOut("+491715550001".into()));
    let r = authed(
        &u,
        invite(&[("Content-Type", "multipart/mixed; boundary=xx")], &body),
    )
    .await;
    assert_eq!(r.reply.code, 403, "{r:?}");
}

#[tokio::test]
async fn offers_we_cannot_answer_and_limits() {
    let (u, _, _) = session_uas(1);
    let tls = offer().replace("TCP/MSRP", "TCP/TLS/MSRP");
    assert_eq!(authed(&u, invite(&[], &tls)).await.reply.code, 488);
    assert_eq!(
        authed(&u, invite(&[], "")).await.reply.code,
        488,
        "no offer"
    );
    assert_eq!(authed(&u, invite(&[], "junk")).await.reply.code, 400);
    let short = authed(&u, invite(&[("Session-Expires", "30")], &offer())).await;
    assert_eq!(
        (short.reply.code, short.reply.header("Min-SE")),
        (422, Some("90"))
    );
    let foreign = request(
        "INVITE",
        "sip:jane@otherdomain.test",
        &[("Content-Type", "application/sdp")],
        &offer(),
    );
    assert_eq!(authed(&u, foreign).await.reply.code, 403);
    assert_eq!(authed(&u, invite(&[], &offer())).await.reply.code, 200);
    assert_eq!(
        authed(&u, invite(&[], &offer())).await.reply.code,
        486,
        "max_sessions is 1"
    );
    let stray = request(
        "BYE",
        SUBSCRIBER,
        &[("To", &format!("<{SUBSCRIBER}>;tag=zz"))],
        "",
    );
    assert_eq!(u.handle(&stray, NOW).await.reply.code, 481);
}

#[tokio::test]
async fn without_msrp_invite_stays_405() {
    let (u, _) = uas();
    let r = u.handle(&invite(&[], &offer()), NOW).await;
    assert_eq!((r.reply.code, r.reply.header("Allow")), (405, Some(ALLOW)));
}
