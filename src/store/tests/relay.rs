//! IMs between users keep their envelope; the notifications owed about them
//! are inbox rows for their sender, written with the change that caused them.

use super::*;

const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";

fn two_users(s: &mut Store) -> (UserId, UserId) {
    (add_alice(s), add_sip_user(s, BOB))
}

fn asked(delivered: bool, failed: bool, displayed: bool) -> NotifyFlags {
    NotifyFlags {
        delivered,
        failed,
        displayed,
    }
}

fn relay(s: &mut Store, from: UserId, to: UserId, id: Option<&str>, n: NotifyFlags) -> InboundId {
    let env = RelayEnvelope {
        message_id: id,
        origin: ALICE,
        notify: n,
    };
    let im = RelayedIm {
        to,
        from,
        sender: "alice",
        text: "hi Bob",
        envelope: env,
    };
    s.enqueue_im(&im, T0, T0.plus(40)).unwrap()
}

/// (kind, state, user_id, sender, text, im_message_id, origin, origin_user_id,
/// notify d/f/x, disposition, next_attempt_at) of every inbound row.
type Row = (
    String,
    String,
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    (bool, bool, bool),
    Option<String>,
    i64,
);

fn inbound_rows(s: &Store) -> Vec<Row> {
    rows(
        s,
        "SELECT kind, state, user_id, sender, text, im_message_id, origin, origin_user_id, \
         notify_delivered, notify_failed, notify_displayed, disposition, next_attempt_at \
         FROM inbound ORDER BY id",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                (r.get(8)?, r.get(9)?, r.get(10)?),
                r.get(11)?,
                r.get(12)?,
            ))
        },
    )
}

/// A pending notice row owed to `owed` about bob's IM `id`, due at `at`.
fn notice_row(owed: UserId, id: &str, disposition: &str, at: UnixTime) -> Row {
    (
        "notice".into(),
        "pending".into(),
        Some(owed.0),
        BOB.into(),
        String::new(),
        Some(id.into()),
        Some(BOB.into()),
        None,
        (false, false, false),
        Some(disposition.into()),
        at.0,
    )
}

#[test]
fn the_relay_keeps_the_envelope_and_holds_the_first_attempt() {
    let mut s = mem();
    let (alice, bob) = two_users(&mut s);
    let given = relay(&mut s, alice, bob, Some("m-1"), asked(true, false, true));
    let made_up = relay(&mut s, alice, bob, None, NotifyFlags::default());
    let r = inbound_rows(&s);
    assert_eq!(
        r[0],
        (
            "message".into(),
            "pending".into(),
            Some(bob.0),
            "alice".into(),
            "hi Bob".into(),
            Some("m-1".into()),
            Some(ALICE.into()),
            Some(alice.0),
            (true, false, true),
            None,
            T0.plus(40).0,
        )
    );
    assert_eq!(r[1].5, Some(format!("im-{}", made_up.0)));
    // Held: not due before the inline attempt had its chance.
    assert!(s.pending_inbound(T0.plus(39)).unwrap().is_empty());
    let due = s.pending_inbound(T0.plus(40)).unwrap();
    assert_eq!(due[0].id, given);
    assert_eq!(due[0].kind, InboundKind::Message);
    assert_eq!(due[0].origin.as_deref(), Some(ALICE));
    assert_eq!(due[0].origin_user, Some(alice));
    assert_eq!(due[0].notify, asked(true, false, true));
    assert_eq!(due[0].disposition, None);
}

#[test]
fn delivered_owes_a_notice_to_the_sender_in_the_same_transaction() {
    let mut s = mem();
    let (alice, bob) = two_users(&mut s);
    let id = relay(&mut s, alice, bob, Some("m-1"), asked(true, true, false));
    let quiet = relay(&mut s, alice, bob, Some("m-2"), asked(false, true, false));
    s.mark_inbound_delivered(id, bob, T0.plus(5)).unwrap();
    s.mark_inbound_delivered(quiet, bob, T0.plus(5)).unwrap();
    let r = inbound_rows(&s);
    assert_eq!(r.len(), 3, "one notice, for the IM that asked: {r:?}");
    assert_eq!(r[2], notice_row(alice, "m-1", "delivered", T0.plus(5)));
    assert_eq!(s.count_pending_inbound().unwrap(), 1);
    let notice = s.pending_inbound(T0.plus(5)).unwrap().remove(0);
    assert_eq!(
        (notice.kind, notice.disposition, notice.user),
        (
            InboundKind::Notice,
            Some(NoticeDisposition::Delivered),
            Some(alice)
        )
    );
    // The notice delivered owes nothing more.
    s.mark_inbound_delivered(notice.id, alice, T0.plus(6))
        .unwrap();
    assert_eq!(inbound_rows(&s).len(), 3);
    assert_eq!(s.count_pending_inbound().unwrap(), 0);
}

#[test]
fn expired_or_failed_owes_a_negative_notice_only_when_asked() {
    let mut s = mem();
    let (alice, bob) = two_users(&mut s);
    let expired = relay(&mut s, alice, bob, Some("m-1"), asked(false, true, false));
    let failed = relay(&mut s, alice, bob, Some("m-2"), asked(false, true, false));
    let silent = relay(&mut s, alice, bob, Some("m-3"), asked(true, false, false));
    s.mark_inbound_expired(expired, "not delivered in time", T0.plus(9))
        .unwrap();
    s.mark_inbound_failed(failed, "SIP 403", T0.plus(9))
        .unwrap();
    s.mark_inbound_failed(silent, "SIP 403", T0.plus(9))
        .unwrap();
    type Notice = (Option<i64>, String, Option<String>, Option<String>);
    let notices: Vec<Notice> = inbound_rows(&s)
        .into_iter()
        .filter(|r| r.0 == "notice")
        .map(|r| (r.2, r.4, r.5, r.9))
        .collect();
    assert_eq!(
        notices,
        [
            (
                Some(alice.0),
                "not delivered in time".into(),
                Some("m-1".into()),
                Some("failed".into())
            ),
            (
                Some(alice.0),
                "SIP 403".into(),
                Some("m-2".into()),
                Some("failed".into())
            ),
        ]
    );
}

#[test]
fn an_sms_or_a_foreign_im_owes_no_notice() {
    let mut s = mem();
    let (alice, _) = two_users(&mut s);
    let env = RelayEnvelope {
        message_id: Some("j-1"),
        origin: "sip:jane@otherdomain.test",
        notify: asked(true, true, true),
    };
    let id = s
        .enqueue_foreign_im(alice, "sip:jane@otherdomain.test", "hi", &env, T0)
        .unwrap();
    s.mark_inbound_delivered(id, alice, T0.plus(1)).unwrap();
    assert_eq!(inbound_rows(&s).len(), 1);
}

#[test]
fn a_display_is_relayed_once_and_only_from_the_recipient() {
    let mut s = mem();
    let (alice, bob) = two_users(&mut s);
    let carol = add_sip_user(&mut s, "sip:carol@example.com");
    let id = relay(&mut s, alice, bob, Some("m-1"), asked(false, false, true));
    let no_display = relay(&mut s, alice, bob, Some("m-2"), asked(true, false, false));
    s.mark_inbound_delivered(id, bob, T0.plus(1)).unwrap();
    s.mark_inbound_delivered(no_display, bob, T0.plus(1))
        .unwrap();
    let before = inbound_rows(&s);
    // Forged: carol never got m-1; bob never got m-9; alice's is not bob's.
    let d = NoticeDisposition::Displayed;
    let ask = |s: &mut Store, reporter, id, origin| {
        s.relay_disposition(reporter, id, origin, d, T0.plus(2))
            .unwrap()
    };
    assert_eq!(
        ask(&mut s, carol, "m-1", alice),
        DispositionOutcome::Unknown
    );
    assert_eq!(ask(&mut s, bob, "m-9", alice), DispositionOutcome::Unknown);
    assert_eq!(ask(&mut s, bob, "m-1", carol), DispositionOutcome::Unknown);
    // Not asked, or a delivery status: correlated, nothing passed on.
    assert_eq!(ask(&mut s, bob, "m-2", alice), DispositionOutcome::NotOwed);
    assert_eq!(
        s.relay_disposition(bob, "m-1", alice, NoticeDisposition::Delivered, T0.plus(2))
            .unwrap(),
        DispositionOutcome::NotOwed
    );
    assert_eq!(inbound_rows(&s), before);
    let DispositionOutcome::Owed(notice) = s
        .relay_disposition(bob, "m-1", alice, d, T0.plus(3))
        .unwrap()
    else {
        panic!("the display is owed to alice");
    };
    // Once.
    assert_eq!(
        s.relay_disposition(bob, "m-1", alice, d, T0.plus(4))
            .unwrap(),
        DispositionOutcome::NotOwed
    );
    let after = inbound_rows(&s);
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        after.last().unwrap(),
        &notice_row(alice, "m-1", "displayed", T0.plus(3))
    );
    assert_eq!(s.inbound(notice).unwrap().unwrap().user, Some(alice));
}
