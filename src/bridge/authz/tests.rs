//! Presence authorisation through the bridge, in process: a real store, a
//! fixed clock, and front ends that record what they are told.

use std::sync::{Arc, Mutex};

use crate::bridge::api::{
    BridgeApi, DeliveryNotice, DeliveryResult, ImApi, ImFrontEnd, ImSend, NotifyOn, PresenceRule,
    Recipient, Refusal, Sender, SmsToIm, SubHandling, Target, Verified, WatchChanged,
    WatchDecision, WatcherMatch,
};
use crate::bridge::{Bridge, Shared};
use crate::config::Config;
use crate::modem::BoxFuture;
use crate::store::{FrontEnd, Store, UnixTime, UserSettings, normalise_msisdn};

const NOW: UnixTime = UnixTime(1_800_000_000);
/// One presentity with a SIP AOR and an IMPS UserID.
const ALICE_SIP: &str = "sip:alice@example.com";
const ALICE_WV: &str = "wv:alice@example.com";
const HARRY: &str = "wv:harry@example.com";
const BOB: &str = "sip:bob@example.com";
const JANE: &str = "sip:jane@otherdomain.test";
const NUMBER: &str = "+491701234567";

/// A front end that records what the bridge tells it about watchers.
#[derive(Default)]
struct Fe {
    pending: Mutex<Vec<(String, String)>>,
    changed: Mutex<Vec<WatchChanged>>,
}

impl ImFrontEnd for Fe {
    fn deliver(&self, _msg: SmsToIm) -> BoxFuture<DeliveryResult> {
        Box::pin(async { DeliveryResult::Delivered })
    }
    fn notify(&self, _notice: DeliveryNotice) -> BoxFuture<DeliveryResult> {
        Box::pin(async { DeliveryResult::Delivered })
    }
    fn watcher_pending(&self, presentity: &str, watcher: &str) {
        self.pending
            .lock()
            .unwrap()
            .push((presentity.into(), watcher.into()));
    }
    fn watch_changed(&self, change: &WatchChanged) {
        self.changed.lock().unwrap().push(change.clone());
    }
}

impl Fe {
    fn pending(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.pending.lock().unwrap())
    }
    fn changed(&self) -> Vec<(String, WatchDecision)> {
        std::mem::take(&mut *self.changed.lock().unwrap())
            .into_iter()
            .map(|c| {
                assert_eq!(c.presentity, ALICE_SIP, "named by the user's address");
                (c.watcher, c.decision)
            })
            .collect()
    }
}

struct World {
    shared: Arc<Shared>,
    bridge: Arc<Bridge>,
    sip: Arc<Fe>,
    imps: Arc<Fe>,
}

fn world_with(cfg: &Config) -> World {
    let mut s = Store::open_in_memory().unwrap();
    let settings = UserSettings::default();
    s.add_user(Some(ALICE_SIP), Some(ALICE_WV), &settings, None, "r", NOW)
        .unwrap();
    s.add_user(None, Some(HARRY), &settings, None, "r", NOW)
        .unwrap();
    s.add_user(Some(BOB), None, &settings, None, "r", NOW)
        .unwrap();
    let shared = Shared::with_clock(s, cfg, Arc::new(|| true), Arc::new(|| NOW));
    let bridge = Bridge::new(Arc::clone(&shared));
    let (sip, imps) = (Arc::new(Fe::default()), Arc::new(Fe::default()));
    shared.set_front_end(FrontEnd::Sip, Arc::clone(&sip) as Arc<dyn ImFrontEnd>);
    shared.set_front_end(FrontEnd::Imps, Arc::clone(&imps) as Arc<dyn ImFrontEnd>);
    World {
        shared,
        bridge,
        sip,
        imps,
    }
}

fn world() -> World {
    world_with(&Config::default())
}

fn rule(id: &str, watcher: WatcherMatch, handling: SubHandling) -> PresenceRule {
    PresenceRule {
        id: id.into(),
        watcher,
        handling,
    }
}

impl World {
    async fn authorise(&self, watcher: &str) -> WatchDecision {
        self.bridge
            .authorise_watch(ALICE_WV.into(), watcher.into())
            .await
            .unwrap()
    }

    async fn watchers(&self) -> Vec<(String, WatchDecision)> {
        self.bridge
            .watchers(ALICE_SIP.into())
            .await
            .unwrap()
            .into_iter()
            .map(|w| (w.watcher, w.decision))
            .collect()
    }

    /// What `from` gets for an IM to alice (by user part).
    async fn message(&self, from: &str) -> Result<(), Refusal> {
        let req = ImSend {
            sender: Sender {
                address: from.into(),
                display_name: None,
                verified: Verified::Authenticated,
            },
            front_end: FrontEnd::Imps,
            to: "alice".into(),
            text: "hi".into(),
            im_message_id: None,
            notify: NotifyOn::default(),
        };
        self.bridge.send(req).await.map(|_| ())
    }
}

#[tokio::test]
async fn an_unknown_watcher_is_pending_and_the_presentity_is_asked_once_on_each_front_end() {
    let w = world();
    assert_eq!(w.authorise(HARRY).await, WatchDecision::Pending);
    // Alice is on both front ends, each by its own address.
    assert_eq!(w.sip.pending(), [(ALICE_SIP.into(), HARRY.into())]);
    assert_eq!(w.imps.pending(), [(ALICE_WV.into(), HARRY.into())]);
    // Asked again (a refresh, another fetch): still pending, not asked twice.
    assert_eq!(w.authorise(HARRY).await, WatchDecision::Pending);
    assert_eq!(w.sip.pending(), []);
    assert_eq!(w.watchers().await, [(HARRY.into(), WatchDecision::Pending)]);
    // The row is the store's: since is the first sighting.
    let since = w
        .shared
        .db(|s| Ok(s.watchers(crate::store::UserId(1))?[0].since))
        .await
        .unwrap();
    assert_eq!(since, NOW);
    // Alice's own other address is no watcher.
    assert_eq!(w.authorise(ALICE_SIP).await, WatchDecision::Allow);
    assert_eq!(w.watchers().await.len(), 1);
    // An unknown presentity is refused.
    assert_eq!(
        w.bridge
            .authorise_watch("sip:nobody@example.com".into(), HARRY.into())
            .await,
        Err(Refusal::UnknownUser("sip:nobody@example.com".into()))
    );
}

#[tokio::test]
async fn the_configured_default_decides_who_no_rule_names() {
    let mut cfg = Config::default();
    cfg.presence.default_policy = crate::config::DefaultPolicy::PoliteBlock;
    let w = world_with(&cfg);
    assert_eq!(w.authorise(HARRY).await, WatchDecision::PoliteBlock);
    assert_eq!(w.sip.pending(), [], "nobody to ask");
}

#[tokio::test]
async fn an_answer_becomes_an_identity_rule_and_every_front_end_hears_it() {
    let w = world();
    w.authorise(HARRY).await;
    w.bridge
        .decide_watcher(ALICE_SIP.into(), HARRY.into(), SubHandling::Allow)
        .await
        .unwrap();
    for fe in [&w.sip, &w.imps] {
        assert_eq!(fe.changed(), [(HARRY.into(), WatchDecision::Allow)]);
    }
    assert_eq!(w.watchers().await, [(HARRY.into(), WatchDecision::Allow)]);
    assert_eq!(
        w.bridge.presence_rules(ALICE_WV.into()).await.unwrap(),
        [rule(
            "wa1",
            WatcherMatch::Identity(HARRY.into()),
            SubHandling::Allow
        )]
    );
    assert_eq!(w.authorise(HARRY).await, WatchDecision::Allow);
    // Removing the watcher later: blocked at once, messages too.
    w.bridge
        .decide_watcher(ALICE_SIP.into(), HARRY.into(), SubHandling::Block)
        .await
        .unwrap();
    assert_eq!(w.imps.changed(), [(HARRY.into(), WatchDecision::Block)]);
    assert_eq!(
        w.bridge.presence_rules(ALICE_WV.into()).await.unwrap(),
        [rule(
            "wa1",
            WatcherMatch::Identity(HARRY.into()),
            SubHandling::Block
        )]
    );
    assert_eq!(
        w.message(HARRY).await,
        Err(Refusal::BlockedByRecipient(ALICE_SIP.into()))
    );
    assert_eq!(w.message(BOB).await, Ok(()), "others still write");
}

#[tokio::test]
async fn new_rules_tell_each_watcher_whose_decision_moved() {
    let w = world();
    w.authorise(HARRY).await;
    w.authorise(BOB).await;
    assert_eq!(
        w.watchers().await,
        [
            (BOB.into(), WatchDecision::Pending),
            (HARRY.into(), WatchDecision::Pending)
        ]
    );
    // The whole domain allowed, Bob polite-blocked.
    let rules = vec![
        rule(
            "d",
            WatcherMatch::Domain("example.com".into()),
            SubHandling::Allow,
        ),
        rule(
            "b",
            WatcherMatch::Identity(BOB.into()),
            SubHandling::PoliteBlock,
        ),
    ];
    w.bridge
        .set_presence_rules(ALICE_SIP.into(), rules.clone())
        .await
        .unwrap();
    let mut changed = w.sip.changed();
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        changed,
        [
            (BOB.into(), WatchDecision::PoliteBlock),
            (HARRY.into(), WatchDecision::Allow)
        ]
    );
    assert_eq!(w.imps.changed().len(), 2);
    assert_eq!(
        w.bridge.presence_rules(ALICE_WV.into()).await.unwrap(),
        rules
    );
    // Only Bob's rule changes: only Bob hears.
    let rules = vec![
        rule(
            "d",
            WatcherMatch::Domain("example.com".into()),
            SubHandling::Allow,
        ),
        rule("b", WatcherMatch::Identity(BOB.into()), SubHandling::Allow),
    ];
    w.bridge
        .set_presence_rules(ALICE_SIP.into(), rules)
        .await
        .unwrap();
    assert_eq!(w.sip.changed(), [(BOB.into(), WatchDecision::Allow)]);
    // A policy the store refuses leaves everything as it was.
    let twice = vec![
        rule("x", WatcherMatch::Anyone, SubHandling::Block),
        rule("x", WatcherMatch::Anyone, SubHandling::Block),
    ];
    assert!(matches!(
        w.bridge.set_presence_rules(ALICE_SIP.into(), twice).await,
        Err(Refusal::Invalid(_))
    ));
    assert_eq!(w.sip.changed(), []);
    assert_eq!(w.authorise(HARRY).await, WatchDecision::Allow);
}

#[tokio::test]
async fn block_entity_blocks_presence_and_messages_and_unblocking_undoes_both() {
    let w = world();
    w.authorise(HARRY).await;
    // Alice (on IMPS) blocks Harry.
    w.bridge
        .block(ALICE_WV.into(), HARRY.into(), true)
        .await
        .unwrap();
    assert_eq!(w.imps.changed(), [(HARRY.into(), WatchDecision::Block)]);
    assert_eq!(w.authorise(HARRY).await, WatchDecision::Block);
    assert_eq!(
        w.bridge.watch(HARRY.into(), "alice".into()).await,
        Err(Refusal::BlockedByRecipient("alice".into()))
    );
    assert_eq!(
        w.message(HARRY).await,
        Err(Refusal::BlockedByRecipient(ALICE_SIP.into()))
    );
    // A block rule the presentity wrote over XCAP goes with the unblock too.
    w.bridge
        .set_presence_rules(
            ALICE_SIP.into(),
            vec![rule(
                "h",
                WatcherMatch::Identity(HARRY.into()),
                SubHandling::Block,
            )],
        )
        .await
        .unwrap();
    w.bridge
        .block(ALICE_WV.into(), HARRY.into(), false)
        .await
        .unwrap();
    assert_eq!(w.bridge.presence_rules(ALICE_WV.into()).await.unwrap(), []);
    assert_eq!(w.message(HARRY).await, Ok(()));
    // Unblocked and still listed: the proactive flow lets him see.
    assert_eq!(w.imps.changed(), [(HARRY.into(), WatchDecision::Allow)]);
    assert_eq!(w.authorise(HARRY).await, WatchDecision::Allow);
}

#[tokio::test]
async fn watching_a_user_follows_their_policy_on_both_front_ends() {
    let w = world();
    // Harry (IMPS) fetches Alice: pending, shown offline.
    let watched = w.bridge.watch(HARRY.into(), "alice".into()).await.unwrap();
    assert_eq!(
        (watched.decision, watched.online),
        (WatchDecision::Pending, Some(false))
    );
    assert!(matches!(watched.target, Target::User { .. }));
    // Bob (SIP) subscribes to Alice by user part: polite-blocked, offline.
    w.bridge
        .decide_watcher(ALICE_SIP.into(), BOB.into(), SubHandling::PoliteBlock)
        .await
        .unwrap();
    let p = w
        .bridge
        .presence(BOB.into(), Recipient::Alias("alice".into()))
        .await
        .unwrap();
    assert_eq!(p.decision, WatchDecision::PoliteBlock);
    assert_eq!(
        p.im_user.map(|u| u.presence),
        Some(crate::presence::Presence::offline())
    );
    // Alice (SIP) allowed by Harry's list entry for her (the proactive flow).
    w.bridge
        .list_add(HARRY.into(), "Friends".into(), ALICE_WV.into(), None)
        .await
        .unwrap();
    let seen = w
        .bridge
        .authorise_watch(HARRY.into(), ALICE_SIP.into())
        .await
        .unwrap();
    assert_eq!(seen, WatchDecision::Allow);
}

#[tokio::test]
async fn a_watcher_of_another_domain_goes_through_the_same_policy() {
    let w = world();
    let p = w
        .bridge
        .presence(JANE.into(), Recipient::Alias("alice".into()))
        .await
        .unwrap();
    assert_eq!(p.decision, WatchDecision::Pending);
    assert_eq!(w.sip.pending(), [(ALICE_SIP.into(), JANE.into())]);
    w.bridge
        .decide_watcher(ALICE_SIP.into(), JANE.into(), SubHandling::Block)
        .await
        .unwrap();
    assert_eq!(
        w.bridge
            .presence(JANE.into(), Recipient::Alias("alice".into()))
            .await,
        Err(Refusal::Blocked(JANE.into()))
    );
}

#[tokio::test]
async fn a_subscriber_who_opted_out_is_unavailable_with_why_and_a_blocked_one_refused() {
    let w = world();
    let m = normalise_msisdn(NUMBER, None).unwrap();
    let alice = crate::store::UserId(1);
    let m2 = m.clone();
    w.shared
        .db(move |s| s.put_contact(alice, &m2, Some("Mum"), "SMS", NOW))
        .await
        .unwrap();
    let look = || async {
        w.bridge
            .presence(ALICE_SIP.into(), Recipient::Number(NUMBER.into()))
            .await
            .unwrap()
    };
    let p = look().await;
    assert_eq!(
        (p.decision, p.unavailable.as_deref(), p.name.as_deref()),
        (WatchDecision::Allow, None, Some("Mum"))
    );
    let m2 = m.clone();
    w.shared
        .db(move |s| s.set_opted_out(&m2, true, NOW))
        .await
        .unwrap();
    assert_eq!(
        look().await.unavailable.as_deref(),
        Some("opted out of messages (STOP)")
    );
    // IMPS sees the same.
    let watched = w
        .bridge
        .watch(ALICE_WV.into(), NUMBER.into())
        .await
        .unwrap();
    assert_eq!(
        watched.unavailable.as_deref(),
        Some("opted out of messages (STOP)")
    );
    let m2 = m.clone();
    w.shared
        .db(move |s| {
            s.set_opted_out(&m2, false, NOW)?;
            s.set_blocked(ALICE_SIP, &m2, true)
        })
        .await
        .unwrap();
    assert_eq!(
        w.bridge
            .presence(ALICE_SIP.into(), Recipient::Number(NUMBER.into()))
            .await,
        Err(Refusal::Blocked(NUMBER.into()))
    );
}

#[tokio::test]
async fn another_watcher_of_a_subscriber_gets_the_owners_policy() {
    let w = world();
    let m = normalise_msisdn(NUMBER, None).unwrap();
    let alice = crate::store::UserId(1);
    w.shared
        .db(move |s| s.put_contact(alice, &m, None, "SMS", NOW))
        .await
        .unwrap();
    // Bob has no such contact: Alice, the owner, is asked about Bob.
    let p = w
        .bridge
        .presence(BOB.into(), Recipient::Number(NUMBER.into()))
        .await
        .unwrap();
    assert_eq!(p.decision, WatchDecision::Pending);
    assert_eq!(w.sip.pending(), [(ALICE_SIP.into(), BOB.into())]);
    w.bridge
        .decide_watcher(ALICE_SIP.into(), BOB.into(), SubHandling::Block)
        .await
        .unwrap();
    assert_eq!(
        w.bridge
            .presence(BOB.into(), Recipient::Number(NUMBER.into()))
            .await,
        Err(Refusal::NotInContacts(NUMBER.into()))
    );
    // A number nobody has stays refused, as before.
    assert_eq!(
        w.bridge
            .presence(BOB.into(), Recipient::Number("+491709999999".into()))
            .await,
        Err(Refusal::NotInContacts("+491709999999".into()))
    );
}
