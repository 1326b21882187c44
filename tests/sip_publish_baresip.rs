//! baresip (Debian `baresip-core`) publishing its presence (RFC 3903) to the
//! front end: with no registration at all, the user shows online only
//! because of the publication (baresip's first says `basic` "unknown", the
//! one after `/presence_online` "open"); baresip keeps its entity tag and
//! names it when it removes the publication on quitting.

mod common;
mod sip_support;

use std::time::Duration;

use sip_support::{baresip_home, baresip_log, spawn_baresip, start};
use smsbridge::bridge::api::ImFrontEnd;
use smsbridge::presence::Presence;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_publishes_and_unpublishes_its_presence() {
    if !common::peer_available(
        "baresip",
        "apt-get install baresip-core",
        common::command_succeeds("sh", &["-c", "command -v baresip"]),
    ) {
        return;
    }
    let (fe, _bridge, stop) = start(&[]).await;
    assert_eq!(fe.user_presence("alice"), Some(Presence::offline()));
    let dir = tempfile::tempdir().unwrap();
    // regint=0: no REGISTER, so online can only come from the PUBLISH.
    baresip_home(dir.path(), &fe, "regint=0;pubint=60");
    // Its first publication says `unknown`; this one says `open`.
    let child = spawn_baresip(dir.path(), 4, &["/presence_online"]);
    let mut published = false;
    for _ in 0..50 {
        if fe.user_presence("alice") == Some(Presence::online()) {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = baresip_log(child).await;
    assert!(published, "no publication seen:\n{log}");
    assert!(fe.registrations().is_empty(), "regint=0 registers nothing");
    for seen in [
        "PUBLISH sip:alice@sms.example",
        "SIP-ETag: ",
        "SIP-If-Match: ",
    ] {
        assert!(
            log.contains(seen),
            "{seen:?} not in baresip's trace:\n{log}"
        );
    }
    assert!(
        !log.contains("publisher got error response"),
        "baresip was refused:\n{log}"
    );
    // Quitting sends Expires: 0 with its tag, but baresip exits before it can
    // answer our challenge to it: the publication stands until it expires.
    assert!(log.contains("Expires: 0\r\nSIP-If-Match: "), "{log}");
    assert_eq!(fe.user_presence("alice"), Some(Presence::online()));
    stop.cancel();
}
