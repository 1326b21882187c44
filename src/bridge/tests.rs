//! The glue around the policy core, in process: a real store, a fixed clock,
//! concurrent requests, and reports stored without being applied.

use std::sync::{Arc, Mutex};

use super::api::{
    BridgeApi, DeliveryNotice, DeliveryResult, ImFrontEnd, ImToSms, NotifyOn, Recipient, Refusal,
    Sender, SmsToIm, Verified,
};
use super::{Bridge, Shared, StoreWork};
use crate::config::Config;
use crate::modem::{BoxFuture, ModemInfo, Work};
use crate::pdu;
use crate::store::{FrontEnd, MessageState, Store, UnixTime, UserSettings};

const NOW: UnixTime = UnixTime(1_800_000_000);

fn user_settings(rate: u32) -> UserSettings {
    UserSettings {
        rate_per_minute: rate,
        ..UserSettings::default()
    }
}

fn bridge(store: Store, cfg: &Config) -> (Arc<Shared>, Arc<Bridge>) {
    let shared = Shared::with_clock(store, cfg, Arc::new(|| true), Arc::new(|| NOW));
    (Arc::clone(&shared), Bridge::new(shared))
}

fn im(from: &str, to: &str) -> ImToSms {
    ImToSms {
        sender: Sender {
            address: from.into(),
            display_name: None,
            verified: Verified::Authenticated,
        },
        front_end: FrontEnd::Sip,
        recipient: Recipient::Number(to.into()),
        text: "hello".into(),
        im_message_id: Some("imdn-1".into()),
        notify: NotifyOn {
            displayed: false,
            delivered: true,
            failed: true,
        },
        anonymous: false,
    }
}

/// Fires `n` submits at once and sorts the answers.
async fn burst(bridge: &Arc<Bridge>, reqs: Vec<ImToSms>) -> (usize, Vec<Refusal>) {
    let mut set = tokio::task::JoinSet::new();
    for r in reqs {
        let b = Arc::clone(bridge);
        set.spawn(async move { b.submit(r).await });
    }
    let (mut ok, mut refused) = (0, Vec::new());
    while let Some(r) = set.join_next().await {
        match r.expect("task") {
            Ok(_) => ok += 1,
            Err(e) => refused.push(e),
        }
    }
    (ok, refused)
}

fn file_store(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path().join("db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_at_once_from_one_user_with_a_limit_of_ten_queue_exactly_ten() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = file_store(&dir);
    store
        .add_user(
            Some("sip:alice@example.com"),
            None,
            &user_settings(10),
            None,
            "r",
            NOW,
        )
        .unwrap();
    let (shared, bridge) = bridge(store, &Config::default());
    let reqs = (0..40)
        .map(|_| im("sip:alice@example.com", "+4917012345"))
        .collect();
    let (ok, refused) = burst(&bridge, reqs).await;
    assert_eq!(ok, 10);
    assert_eq!(refused.len(), 30);
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Refusal::RateLimited { limit: 10, .. })),
        "{refused:?}"
    );
    let queued = shared
        .db(|s| s.count_messages(MessageState::Queued))
        .await
        .unwrap();
    assert_eq!(queued, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_limit_holds_exactly_across_users() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = file_store(&dir);
    for u in ["a", "b", "c", "d"] {
        store
            .add_user(
                Some(&format!("sip:{u}@example.com")),
                None,
                &user_settings(0),
                None,
                "r",
                NOW,
            )
            .unwrap();
    }
    let mut cfg = Config::default();
    cfg.bridge.queue_limit = 25;
    let (shared, bridge) = bridge(store, &cfg);
    let reqs = (0..60)
        .map(|i| {
            let u = ["a", "b", "c", "d"][i % 4];
            im(&format!("sip:{u}@example.com"), "+4917012345")
        })
        .collect();
    let (ok, refused) = burst(&bridge, reqs).await;
    assert_eq!((ok, refused.len()), (25, 35));
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Refusal::QueueFull { queued: 25, .. })),
        "{refused:?}"
    );
    let queued = shared
        .db(|s| s.count_messages(MessageState::Queued))
        .await
        .unwrap();
    assert_eq!(queued, 25);
}

/// A front end that records the notices it is asked to send.
#[derive(Default)]
struct Recorder {
    notices: Mutex<Vec<DeliveryNotice>>,
    /// What `notify` answers.
    answer: Mutex<Option<DeliveryResult>>,
}

impl ImFrontEnd for Recorder {
    fn deliver(&self, _msg: SmsToIm) -> BoxFuture<DeliveryResult> {
        Box::pin(async { DeliveryResult::Delivered })
    }
    fn notify(&self, notice: DeliveryNotice) -> BoxFuture<DeliveryResult> {
        if let Ok(mut n) = self.notices.lock() {
            n.push(notice);
        }
        let answer = self
            .answer
            .lock()
            .ok()
            .and_then(|a| a.clone())
            .unwrap_or(DeliveryResult::Delivered);
        Box::pin(async move { answer })
    }
}

fn modem() -> ModemInfo {
    ModemInfo {
        imsi: Some("262011234567890".into()),
        ..ModemInfo::default()
    }
}

/// A delivered status report for MR 0x36 to +84294357723.
fn report() -> Vec<u8> {
    pdu::from_hex("07914875215652F006360B914892347527F3817003018104808170030181448000").unwrap()
}

/// A message to +84294357723 sent through `modem()` with MR 0x36.
async fn sent_message(shared: &Arc<Shared>, bridge: &Arc<Bridge>) -> crate::store::MessageId {
    let accepted = bridge
        .submit(im("sip:alice@example.com", "+84294357723"))
        .await
        .expect("accepted");
    shared
        .db(|s| {
            let p = s
                .claim_next_part("262011234567890", NOW)?
                .expect("a part to claim");
            s.part_sent(p.part, 0x36, NOW)
        })
        .await
        .unwrap();
    accepted.message
}

/// alice (no limits) on an in-memory store, with a recording SIP front end.
fn with_recorder() -> (Arc<Shared>, Arc<Bridge>, Arc<Recorder>) {
    with_recorder_and(&Config::default())
}

/// [`with_recorder`] with `cfg`.
fn with_recorder_and(cfg: &Config) -> (Arc<Shared>, Arc<Bridge>, Arc<Recorder>) {
    let mut store = Store::open_in_memory().unwrap();
    store
        .add_user(
            Some("sip:alice@example.com"),
            None,
            &user_settings(0),
            None,
            "r",
            NOW,
        )
        .unwrap();
    let (shared, bridge) = bridge(store, cfg);
    let fe = Arc::new(Recorder::default());
    shared.set_front_end(FrontEnd::Sip, Arc::clone(&fe) as Arc<dyn ImFrontEnd>);
    (shared, bridge, fe)
}

async fn state(shared: &Arc<Shared>, id: crate::store::MessageId) -> MessageState {
    shared
        .db(move |s| Ok(s.message(id)?.expect("message").state))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_report_is_applied_with_its_storing_and_notified_once() {
    let (shared, bridge, fe) = with_recorder();
    let id = sent_message(&shared, &bridge).await;
    let work = StoreWork::new(Arc::clone(&shared));
    assert!(work.received(modem(), report()).await);
    assert_eq!(state(&shared, id).await, MessageState::Delivered);
    super::notices::send_due(&shared, NOW).await;
    // Read again (the modem did not get to delete it): nothing more happens.
    assert!(work.received(modem(), report()).await);
    super::notices::send_due(&shared, NOW).await;
    let applied: Vec<Option<i64>> = shared
        .db(|s| {
            s.unapplied_reports()
                .map(|v| v.iter().map(|r| Some(r.0.0)).collect())
        })
        .await
        .unwrap();
    assert!(applied.is_empty());
    let notices = fe.notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].delivered);
    assert_eq!(notices[0].im_message_id, "imdn-1");
}

#[tokio::test]
async fn a_stored_unapplied_report_is_applied_by_the_sweep() {
    let (shared, bridge, fe) = with_recorder();
    let id = sent_message(&shared, &bridge).await;
    // What an older build or a failed apply step left: the report stored raw.
    shared
        .db(|s| s.receive_pdu("262011234567890", &report(), NOW).map(|_| ()))
        .await
        .unwrap();
    assert_eq!(state(&shared, id).await, MessageState::Sent);
    let applied = super::work::sweep_reports(&shared).await.unwrap();
    assert_eq!(applied, 1);
    assert_eq!(state(&shared, id).await, MessageState::Delivered);
    super::notices::send_due(&shared, NOW).await;
    let notices = fe.notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1);
    assert!(notices[0].delivered);
    // A second sweep finds nothing.
    assert_eq!(super::work::sweep_reports(&shared).await.unwrap(), 0);
}

#[tokio::test]
async fn a_notification_for_an_offline_sender_is_kept_until_they_are_back() {
    let (shared, bridge, fe) = with_recorder();
    *fe.answer.lock().unwrap() = Some(DeliveryResult::Retry("not registered".into()));
    let id = sent_message(&shared, &bridge).await;
    let work = StoreWork::new(Arc::clone(&shared));
    assert!(work.received(modem(), report()).await);
    super::notices::send_due(&shared, NOW).await;
    assert_eq!(fe.notices.lock().unwrap().len(), 1, "tried once");
    // Not due again before its retry time.
    super::notices::send_due(&shared, NOW).await;
    assert_eq!(fe.notices.lock().unwrap().len(), 1);
    // The sender registers: due at once, and taken this time.
    *fe.answer.lock().unwrap() = None;
    let uid = shared
        .db(|s| {
            Ok(s.user_by_address("sip:alice@example.com")?
                .expect("alice")
                .id)
        })
        .await
        .unwrap();
    assert_eq!(
        shared
            .db(move |s| s.notices_due_for(uid, NOW))
            .await
            .unwrap(),
        1
    );
    super::notices::send_due(&shared, NOW).await;
    super::notices::send_due(&shared, NOW.plus(3600)).await;
    let notices = fe.notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 2, "sent again once, then never");
    assert!(notices[1].delivered);
    let left = shared
        .db(|s| s.due_notices(NOW.plus(86_400), 10))
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    let _ = id;
}

#[tokio::test]
async fn a_notification_nobody_could_take_is_given_up_after_the_expiry() {
    let (shared, bridge, fe) = with_recorder();
    *fe.answer.lock().unwrap() = Some(DeliveryResult::Retry("not registered".into()));
    sent_message(&shared, &bridge).await;
    assert!(
        StoreWork::new(Arc::clone(&shared))
            .received(modem(), report())
            .await
    );
    let week = 7 * 86_400;
    super::notices::send_due(&shared, NOW.plus(week + 1)).await;
    assert!(
        fe.notices.lock().unwrap().is_empty(),
        "given up without sending"
    );
    let left = shared
        .db(|s| s.due_notices(NOW.plus(10 * 86_400), 10))
        .await
        .unwrap();
    assert!(left.is_empty());
}

/// One pass of the delivery loop's housekeeping at `now`: the report window,
/// then the notifications.
async fn pass(shared: &Arc<Shared>, now: UnixTime) {
    let (window, _) = shared.policy.report_window();
    super::inbound::end_overdue_reports(shared, now, window).await;
    super::notices::send_due(shared, now).await;
}

#[tokio::test]
async fn no_report_in_the_window_ends_delivery_unknown_and_is_notified_once() {
    let (shared, bridge, fe) = with_recorder();
    let id = sent_message(&shared, &bridge).await;
    // validity 2 days + 1 hour.
    let window = 49 * 3600;
    pass(&shared, NOW.plus(window)).await;
    assert_eq!(
        state(&shared, id).await,
        MessageState::Sent,
        "exactly the window"
    );
    assert!(fe.notices.lock().unwrap().is_empty());

    pass(&shared, NOW.plus(window + 1)).await;
    assert_eq!(state(&shared, id).await, MessageState::DeliveryUnknown);
    pass(&shared, NOW.plus(window + 2)).await;
    let notices = fe.notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let n = &notices[0];
    assert_eq!(n.im_message_id, "imdn-1");
    assert_eq!(n.recipient, "+84294357723");
    assert_eq!(
        (n.delivered, n.neutral),
        (false, false),
        "negative by default"
    );
    assert_eq!(n.cause, Some(crate::store::FailureCause::DeliveryUnknown));
    assert_eq!(
        n.reason.as_deref(),
        Some("no status report within 2days 1h")
    );
    assert_eq!(n.at, NOW.plus(window + 1));

    // The report comes after all: it no longer matches, nothing changes.
    assert!(
        StoreWork::new(Arc::clone(&shared))
            .received(modem(), report())
            .await
    );
    pass(&shared, NOW.plus(window + 3)).await;
    assert_eq!(state(&shared, id).await, MessageState::DeliveryUnknown);
    assert_eq!(fe.notices.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_neutral_notice_when_configured() {
    let mut cfg = Config::default();
    cfg.bridge.report_window = Some(std::time::Duration::from_secs(600));
    cfg.bridge.delivery_unknown_notice = crate::config::UnknownNotice::Neutral;
    let (shared, bridge, fe) = with_recorder_and(&cfg);
    let id = sent_message(&shared, &bridge).await;
    pass(&shared, NOW.plus(600)).await;
    assert_eq!(state(&shared, id).await, MessageState::Sent);
    pass(&shared, NOW.plus(601)).await;
    assert_eq!(state(&shared, id).await, MessageState::DeliveryUnknown);
    let notices = fe.notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1);
    assert_eq!((notices[0].delivered, notices[0].neutral), (false, true));
    assert_eq!(
        notices[0].reason.as_deref(),
        Some("no status report within 10m")
    );
}
