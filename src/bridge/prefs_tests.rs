//! IMs for a user who asked for them as SMS while offline (TS 23.204), in
//! process: an IMPS user writes to a SIP user whose front end says whether
//! they are online.

use std::sync::Arc;

use super::api::{
    BoxFuture, DeliveryNotice, DeliveryResult, ImApi, ImFrontEnd, ImSend, NotifyOn, Refusal,
    Sender, Sent, SmsToIm, Verified,
};
use super::{Bridge, Shared};
use crate::config::Config;
use crate::store::{
    FrontEnd, OfflineDelivery, Store, UnixTime, UserId, UserSettings, normalise_msisdn,
};

const NOW: UnixTime = UnixTime(1_800_000_000);

/// A SIP front end whose users are all online, or all offline.
struct Online(bool);

impl ImFrontEnd for Online {
    fn deliver(&self, _msg: SmsToIm) -> BoxFuture<DeliveryResult> {
        Box::pin(async { DeliveryResult::Retry("not in this test".into()) })
    }
    fn notify(&self, _notice: DeliveryNotice) -> BoxFuture<DeliveryResult> {
        Box::pin(async { DeliveryResult::Retry("not in this test".into()) })
    }
    fn online(&self, _address: &str) -> Option<bool> {
        Some(self.0)
    }
}

/// harry (IMPS, `harry_settings`) and bob (SIP, phone +491701234567, IMs as
/// SMS while offline), bob's front end saying `online`.
fn bridge(online: bool, harry_settings: &UserSettings) -> (Arc<Shared>, Arc<Bridge>, UserId) {
    let mut store = Store::open_in_memory().unwrap();
    store
        .add_user(
            None,
            Some("wv:harry@example.com"),
            harry_settings,
            None,
            "r",
            NOW,
        )
        .unwrap();
    let bob_settings = UserSettings {
        phone: Some(normalise_msisdn("+491701234567", None).unwrap()),
        offline_delivery: OfflineDelivery::Sms,
        ..UserSettings::default()
    };
    let bob = store
        .add_user(
            Some("sip:bob@example.com"),
            None,
            &bob_settings,
            None,
            "r",
            NOW,
        )
        .unwrap();
    let shared = Shared::with_clock(
        store,
        &Config::default(),
        Arc::new(|| true),
        Arc::new(|| NOW),
    );
    shared.set_front_end(FrontEnd::Sip, Arc::new(Online(online)));
    (Arc::clone(&shared), Bridge::new(shared), bob)
}

fn send(text: &str) -> ImSend {
    ImSend {
        sender: Sender {
            address: "wv:harry@example.com".into(),
            display_name: None,
            verified: Verified::Authenticated,
        },
        front_end: FrontEnd::Imps,
        to: "bob".into(),
        text: text.into(),
        im_message_id: Some("m1".into()),
        notify: NotifyOn::default(),
    }
}

/// Outbox messages as (text, for_user), and IMs kept in the inbox.
async fn outcome(shared: &Arc<Shared>) -> (Vec<(String, Option<UserId>)>, usize) {
    shared
        .db(|s| {
            let mut sms = Vec::new();
            for m in s.messages(None)? {
                sms.push((m.text.clone(), s.message_for_user(m.id)?));
            }
            Ok((sms, s.count_pending_inbound()?))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_imps_im_for_offline_bob_is_queued_for_his_phone() {
    let (shared, bridge, bob) = bridge(false, &UserSettings::default());
    let sent = bridge.send(send("hi bob")).await.unwrap();
    let Sent::Sms(accepted) = sent else {
        panic!("not sent as SMS: {sent:?}");
    };
    assert_eq!(accepted.parts, 1);
    assert_eq!(
        outcome(&shared).await,
        (vec![("harry: hi bob".to_owned(), Some(bob))], 0)
    );
}

#[tokio::test]
async fn online_bob_gets_an_im() {
    let (shared, bridge, _) = bridge(true, &UserSettings::default());
    let sent = bridge.send(send("hi bob")).await.unwrap();
    assert_eq!(sent, Sent::Im { delivered: false });
    assert_eq!(outcome(&shared).await, (vec![], 1));
}

#[tokio::test]
async fn an_im_the_sms_path_refuses_is_kept_for_bob() {
    let no_sms = UserSettings {
        may_send_sms: false,
        ..UserSettings::default()
    };
    let (shared, bridge, _) = bridge(false, &no_sms);
    let sent = bridge.send(send("hi bob")).await.unwrap();
    assert_eq!(sent, Sent::Im { delivered: false });
    assert_eq!(outcome(&shared).await, (vec![], 1));
}

#[tokio::test]
async fn a_sender_bob_blocked_reaches_neither_his_phone_nor_his_inbox() {
    let (shared, bridge, bob) = bridge(false, &UserSettings::default());
    shared
        .db(move |s| {
            let harry = s.user_by_address("wv:harry@example.com")?.unwrap().id;
            s.block_im_user(bob, harry, true, NOW)
        })
        .await
        .unwrap();
    let refused = bridge.send(send("hi bob")).await.unwrap_err();
    assert!(
        matches!(refused, Refusal::BlockedByRecipient(_)),
        "{refused:?}"
    );
    assert_eq!(outcome(&shared).await, (vec![], 0));
}
