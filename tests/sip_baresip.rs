//! baresip (Debian `baresip-core`) as a real softphone against the front end:
//! it registers with digest, subscribes to a subscriber's presence, sends a
//! MESSAGE, and takes an SMS delivered to it (its SIP trace, `-s`, shows what
//! it received).

mod common;
mod sip_support;

use std::time::Duration;

use sip_support::{baresip_home, baresip_log, spawn_baresip, start};
use smsbridge::bridge::api::{DeliveryResult, ImFrontEnd, InboundId, Recipient, SmsToIm, UnixTime};
use smsbridge::store::BodyFormat;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_messages_subscribes_and_receives() {
    if !common::peer_available(
        "baresip",
        "apt-get install baresip-core",
        common::command_succeeds("sh", &["-c", "command -v baresip"]),
    ) {
        return;
    }
    let (fe, bridge, stop) = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    baresip_home(dir.path(), &fe, "regint=60");
    std::fs::write(
        dir.path().join("contacts"),
        "\"Bob\" <sip:+491715550001@sms.example>;presence=p2p\n",
    )
    .unwrap();
    let child = spawn_baresip(
        dir.path(),
        8,
        &["/contact_next", "/message hello-from-baresip"],
    );
    // Wait for the registration, then deliver an SMS to it.
    let mut registered = false;
    for _ in 0..50 {
        if !fe.registrations().is_empty() {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(registered, "baresip did not register");
    let sms = SmsToIm {
        inbound: InboundId(1),
        to_user: "sip:alice@sms.example".into(),
        from: "+491715550001".into(),
        from_name: Some("Bob".into()),
        text: "reply from the phone".into(),
        received: UnixTime(1_777_636_800),
        incomplete: false,
        body_format: BodyFormat::Plain,
        envelope: None,
    };
    assert_eq!(fe.deliver(sms).await, DeliveryResult::Delivered);
    let log = baresip_log(child).await;
    let texts: Vec<String> = bridge
        .submitted
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert!(
        texts.contains(&"hello-from-baresip".to_owned()),
        "{texts:?}\n{log}"
    );
    // `-s` makes baresip print its SIP trace: what it received is in there.
    for seen in [
        "reply from the phone",
        "Subscription-State: active;expires=",
        "<basic>open</basic>",
        "<note>SMS-only</note>",
    ] {
        assert!(
            log.contains(seen),
            "baresip did not receive {seen:?}:\n{log}"
        );
    }
    let asked = bridge.presence_asked.lock().unwrap().clone();
    assert!(
        asked.contains(&(
            "sip:alice@sms.example".to_owned(),
            Recipient::Number("+491715550001".into())
        )),
        "no SUBSCRIBE reached the bridge: {asked:?}\n{log}"
    );
    stop.cancel();
}
