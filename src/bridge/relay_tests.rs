//! IMs between users in process: the envelope handed to the recipient's
//! front end, stored (202) vs delivered at once (200), the notices owed to
//! the sender handed to their front end, and dispositions correlated.

use std::sync::{Arc, Mutex};

use super::api::{
    BridgeApi, DeliveryNotice, DeliveryResult, Disposition, DispositionStatus, ImEnvelope,
    ImFrontEnd, ImToSms, NotifyOn, Recipient, Refusal, Sender, SmsToIm, Verified,
};
use super::{Bridge, Shared};
use crate::config::Config;
use crate::modem::BoxFuture;
use crate::store::{FrontEnd, Store, UnixTime, UserSettings};

const NOW: UnixTime = UnixTime(1_800_000_000);

/// A front end whose devices answer `answer`, recording what it is given.
struct Devices {
    answer: Mutex<DeliveryResult>,
    delivered: Mutex<Vec<SmsToIm>>,
    notices: Mutex<Vec<DeliveryNotice>>,
}

impl ImFrontEnd for Devices {
    fn deliver(&self, msg: SmsToIm) -> BoxFuture<DeliveryResult> {
        self.delivered.lock().unwrap().push(msg);
        let answer = self.answer.lock().unwrap().clone();
        Box::pin(async move { answer })
    }
    fn notify(&self, notice: DeliveryNotice) -> BoxFuture<DeliveryResult> {
        self.notices.lock().unwrap().push(notice);
        Box::pin(async { DeliveryResult::Delivered })
    }
}

/// alice, bob and carol (SIP) on one recording front end.
fn rig() -> (Arc<Shared>, Arc<Bridge>, Arc<Devices>) {
    let mut store = Store::open_in_memory().unwrap();
    for u in ["alice", "bob", "carol"] {
        let aor = format!("sip:{u}@example.com");
        store
            .add_user(Some(&aor), None, &UserSettings::default(), None, "r", NOW)
            .unwrap();
    }
    let shared = Shared::with_clock(
        store,
        &Config::default(),
        Arc::new(|| true),
        Arc::new(|| NOW),
    );
    let fe = Arc::new(Devices {
        answer: Mutex::new(DeliveryResult::Retry("not registered".into())),
        delivered: Mutex::new(Vec::new()),
        notices: Mutex::new(Vec::new()),
    });
    shared.set_front_end(FrontEnd::Sip, Arc::clone(&fe) as Arc<dyn ImFrontEnd>);
    (Arc::clone(&shared), Bridge::new(shared), fe)
}

fn sender(user: &str) -> Sender {
    Sender {
        address: format!("sip:{user}@example.com"),
        display_name: None,
        verified: Verified::Authenticated,
    }
}

fn to_bob(id: &str) -> ImToSms {
    ImToSms {
        sender: sender("alice"),
        front_end: FrontEnd::Sip,
        recipient: Recipient::Alias("bob".into()),
        text: "hi Bob".into(),
        im_message_id: Some(id.into()),
        notify: NotifyOn {
            delivered: true,
            failed: false,
            displayed: true,
        },
        anonymous: false,
    }
}

/// One pass of the delivery loop over what is due at `now`.
async fn pass(shared: &Arc<Shared>, now: UnixTime) {
    let due = shared.db(move |s| s.pending_inbound(now)).await.unwrap();
    for m in due {
        super::inbound::deliver(shared, m, &mut Vec::new())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn stored_then_delivered_with_its_envelope_then_one_notice_each() {
    let (shared, bridge, fe) = rig();
    let a = bridge.submit(to_bob("m-1")).await.unwrap();
    assert!(!a.delivered, "bob is away: stored");
    // The first attempt went to bob's front end at once, with the envelope.
    let envelope = ImEnvelope {
        message_id: "m-1".into(),
        from_address: "sip:alice@example.com".into(),
        display: true,
        cpim: true,
        sent_at: NOW,
    };
    {
        let d = fe.delivered.lock().unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].envelope.as_ref(), Some(&envelope));
        assert_eq!(
            (d[0].from.as_str(), d[0].to_user.as_str()),
            ("alice", "sip:bob@example.com")
        );
    }
    // Bob is back: delivered by the loop, and alice is owed one notice.
    *fe.answer.lock().unwrap() = DeliveryResult::Delivered;
    let later = NOW.plus(3600);
    pass(&shared, later).await;
    pass(&shared, later).await;
    pass(&shared, later).await;
    assert_eq!(fe.delivered.lock().unwrap().len(), 2);
    let notices = fe.notices.lock().unwrap().clone();
    assert_eq!(
        notices,
        [DeliveryNotice {
            to_user: "sip:alice@example.com".into(),
            front_end: FrontEnd::Sip,
            im_message_id: "m-1".into(),
            recipient: "sip:bob@example.com".into(),
            recipient_user: Some("bob".into()),
            delivered: true,
            displayed: false,
            neutral: false,
            at: NOW,
            reason: None,
            cause: None,
        }]
    );

    // Bob's display: a forged one (carol) and an unknown id are refused;
    // bob's is passed on once.
    let report = |id: &str| Disposition {
        message_id: id.into(),
        status: DispositionStatus::Displayed,
        at: NOW,
    };
    let alice = || Recipient::Alias("alice".into());
    assert!(matches!(
        bridge
            .disposition(sender("carol"), alice(), report("m-1"))
            .await,
        Err(Refusal::UnknownRecipient(_))
    ));
    assert!(matches!(
        bridge
            .disposition(sender("bob"), alice(), report("m-9"))
            .await,
        Err(Refusal::UnknownRecipient(_))
    ));
    // About an SMS (a number): nobody to pass it to, taken and dropped.
    bridge
        .disposition(
            sender("bob"),
            Recipient::Number("+4917".into()),
            report("m-1"),
        )
        .await
        .unwrap();
    bridge
        .disposition(sender("bob"), alice(), report("m-1"))
        .await
        .unwrap();
    bridge
        .disposition(sender("bob"), alice(), report("m-1"))
        .await
        .unwrap();
    pass(&shared, later).await;
    pass(&shared, later).await;
    let notices = fe.notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices[1].displayed && notices[1].delivered);
    assert_eq!(notices[1].recipient_user.as_deref(), Some("bob"));
}

#[tokio::test]
async fn a_device_that_takes_it_at_once_is_told_apart_from_storage() {
    let (shared, bridge, fe) = rig();
    *fe.answer.lock().unwrap() = DeliveryResult::Delivered;
    let a = bridge.submit(to_bob("m-2")).await.unwrap();
    assert!(a.delivered, "SIP answers 200");
    // Nothing left for the loop but alice's notice; the IM is not sent again.
    pass(&shared, NOW.plus(3600)).await;
    assert_eq!(fe.delivered.lock().unwrap().len(), 1);
    assert_eq!(fe.notices.lock().unwrap().len(), 1);
    assert_eq!(shared.db(|s| s.count_pending_inbound()).await.unwrap(), 0);
}
