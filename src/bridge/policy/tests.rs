//! The policy core with a fixed `now`: every decision at its edges.

use std::time::Duration;

use super::*;
use crate::bridge::api::{NotifyOn, Sender, Verified};
use crate::config::Bridge as Policy;
use crate::store::{FrontEnd, UserSettings};

const NOW: UnixTime = UnixTime(1_800_000_000);

fn user(id: i64) -> User {
    User {
        id: UserId(id),
        sip_aor: Some(format!("sip:u{id}@example.com")),
        imps_id: None,
        settings: UserSettings::default(),
        password_hash: None,
        sip_digest: None,
        created_at: UnixTime(0),
    }
}

fn msisdn(n: &str) -> Msisdn {
    crate::store::normalise_msisdn(n, None).expect("number")
}

fn req(text: &str) -> ImToSms {
    ImToSms {
        sender: Sender {
            address: "sip:u1@example.com".into(),
            display_name: Some("Bank".into()),
            verified: Verified::Authenticated,
        },
        front_end: FrontEnd::Sip,
        recipient: crate::bridge::api::Recipient::Number("+4917012345".into()),
        text: text.into(),
        im_message_id: None,
        notify: NotifyOn::default(),
        anonymous: false,
    }
}

/// A snapshot in which everything is allowed.
fn open() -> SubmitSnapshot {
    SubmitSnapshot {
        user: Some(user(1)),
        recipient: Ok(msisdn("+4917012345")),
        blocked: false,
        opted_out: false,
        sent_last_minute: 0,
        sent_last_day: 0,
        queued: 0,
        modems_ready: true,
    }
}

#[test]
fn an_ordinary_im_is_accepted_with_the_senders_name_in_front() {
    let out = decide_submit(open(), &req("hello\r\n"), &Policy::default()).expect("accepted");
    assert_eq!(out.user, UserId(1));
    assert_eq!(out.msisdn.as_str(), "+4917012345");
    // The configured name or the user part, never the From display name.
    assert_eq!(out.text, "u1: hello");
    assert_eq!(out.parts, 1);
}

#[test]
fn rate_limit_tenth_in_a_minute_accepted_eleventh_refused() {
    let p = Policy::default();
    let mut snap = open();
    snap.sent_last_minute = 9;
    assert!(decide_submit(snap.clone(), &req("x"), &p).is_ok());
    snap.sent_last_minute = 10;
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::RateLimited {
            limit: 10,
            retry_after: Duration::from_secs(60)
        })
    );
}

#[test]
fn rate_limit_of_zero_means_unlimited() {
    let mut snap = open();
    if let Some(u) = snap.user.as_mut() {
        u.settings.rate_per_minute = 0;
        u.settings.daily_cap = 0;
    }
    snap.sent_last_minute = 1_000_000;
    snap.sent_last_day = 1_000_000;
    assert!(decide_submit(snap, &req("x"), &Policy::default()).is_ok());
}

#[test]
fn daily_cap_at_its_edge() {
    let p = Policy::default();
    let mut snap = open();
    snap.sent_last_day = 199;
    assert!(decide_submit(snap.clone(), &req("x"), &p).is_ok());
    snap.sent_last_day = 200;
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::DailyCap(200))
    );
}

#[test]
fn queue_limit_at_its_edge() {
    let p = Policy {
        queue_limit: 5,
        ..Policy::default()
    };
    let mut snap = open();
    snap.queued = 4;
    assert!(decide_submit(snap.clone(), &req("x"), &p).is_ok());
    snap.queued = 5;
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::QueueFull {
            queued: 5,
            retry_after: Duration::from_secs(120)
        })
    );
}

#[test]
fn limit_windows_count_back_from_now() {
    let (minute, day) = limit_windows(NOW);
    assert_eq!(minute, UnixTime(NOW.0 - 60));
    assert_eq!(day, UnixTime(NOW.0 - 86_400));
}

#[test]
fn too_many_parts_refused_at_the_configured_maximum() {
    let p = Policy {
        max_parts: 2,
        sender_prefix: String::new(),
        ..Policy::default()
    };
    // 306 septets fit two parts of 153; 307 need three.
    assert_eq!(
        decide_submit(open(), &req(&"a".repeat(306)), &p).map(|o| o.parts),
        Ok(2)
    );
    assert_eq!(
        decide_submit(open(), &req(&"a".repeat(307)), &p),
        Err(Refusal::TooLong { parts: 3, max: 2 })
    );
}

#[test]
fn refusals_come_in_the_order_a_sender_can_act_on() {
    let p = Policy::default();
    // Unknown user first, even with everything else wrong too.
    let mut snap = open();
    snap.user = None;
    snap.blocked = true;
    snap.modems_ready = false;
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::UnknownUser("sip:u1@example.com".into()))
    );
    let mut snap = open();
    if let Some(u) = snap.user.as_mut() {
        u.settings.may_send_sms = false;
    }
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::SmsNotAllowed("sip:u1@example.com".into()))
    );
    let mut snap = open();
    snap.recipient = Err(Refusal::UnknownRecipient("no contact \"bob\"".into()));
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::UnknownRecipient("no contact \"bob\"".into()))
    );
    let mut snap = open();
    snap.blocked = true;
    snap.opted_out = true;
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::Blocked("+4917012345".into()))
    );
    let mut snap = open();
    snap.opted_out = true;
    snap.sent_last_minute = 10;
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::OptedOut("+4917012345".into()))
    );
    // Limits before the bridge's state.
    let mut snap = open();
    snap.sent_last_minute = 10;
    snap.modems_ready = false;
    assert!(matches!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::RateLimited { .. })
    ));
    let mut snap = open();
    snap.modems_ready = false;
    assert_eq!(
        decide_submit(snap, &req("x"), &p),
        Err(Refusal::NoModem {
            retry_after: Duration::from_secs(60)
        })
    );
}

#[test]
fn empty_and_anonymous_are_screened_before_the_store() {
    let p = Policy {
        allow_anonymous: false,
        ..Policy::default()
    };
    assert_eq!(screen_submit(&req(" \r\n"), &p), Err(Refusal::EmptyMessage));
    let mut anon = req("x");
    anon.anonymous = true;
    assert_eq!(screen_submit(&anon, &p), Err(Refusal::AnonymityForbidden));
    assert_eq!(
        screen_submit(&anon, &Policy::default()),
        Ok(()),
        "allowed by default"
    );
}

#[test]
fn anonymous_senders_are_not_named() {
    let mut r = req("hi");
    r.anonymous = true;
    let out = decide_submit(open(), &r, &Policy::default()).expect("accepted");
    assert_eq!(out.text, "hi");
    let mut snap = open();
    if let Some(u) = snap.user.as_mut() {
        u.settings.display_name = Some("Alice".into());
    }
    let out = decide_submit(snap, &req("hi"), &Policy::default()).expect("accepted");
    assert_eq!(out.text, "Alice: hi");
}

#[test]
fn relay_refused_when_blocked_or_empty() {
    assert_eq!(decide_relay("hi", false, "sip:b@x"), Ok(()));
    assert_eq!(
        decide_relay("hi", true, "sip:b@x"),
        Err(Refusal::BlockedByRecipient("sip:b@x".into()))
    );
    assert_eq!(
        decide_relay("  ", false, "sip:b@x"),
        Err(Refusal::EmptyMessage)
    );
}

#[test]
fn replies_go_to_the_owner_then_the_last_writer_then_the_fallback() {
    let (a, b, c, f) = (UserId(1), UserId(2), UserId(3), UserId(9));
    // Nobody: nothing.
    assert_eq!(route_reply(&RouteSnapshot::default()), None);
    // Only the fallback.
    let fallback = RouteSnapshot {
        fallback: Some(f),
        ..Default::default()
    };
    assert_eq!(route_reply(&fallback), Some(f));
    // The last writer beats the fallback.
    let last = RouteSnapshot {
        last_writer: Some(c),
        fallback: Some(f),
        ..Default::default()
    };
    assert_eq!(route_reply(&last), Some(c));
    // A contact owner beats a last writer who is not an owner.
    let owners = RouteSnapshot {
        owners: vec![a, b],
        last_writer: Some(c),
        fallback: Some(f),
        ..Default::default()
    };
    assert_eq!(route_reply(&owners), Some(a));
    // Among owners, the one who last wrote.
    let owner_wrote = RouteSnapshot {
        owners: vec![a, b],
        last_writer: Some(b),
        ..Default::default()
    };
    assert_eq!(route_reply(&owner_wrote), Some(b));
    // A user chosen by an earlier attempt stays chosen.
    let chosen = RouteSnapshot {
        chosen: Some(c),
        owners: vec![a],
        ..Default::default()
    };
    assert_eq!(route_reply(&chosen), Some(c));
}

#[test]
fn opt_out_keyword() {
    assert!(is_opt_out(" stop\n", "STOP"));
    assert!(!is_opt_out("stop please", "STOP"));
    assert!(!is_opt_out("", ""), "an empty keyword opts nobody out");
}

#[test]
fn inbound_expiry_and_backoff() {
    let week = Duration::from_secs(7 * 86_400);
    assert!(!inbound_expired(UnixTime(NOW.0 - 7 * 86_400), NOW, week));
    assert!(inbound_expired(UnixTime(NOW.0 - 7 * 86_400 - 1), NOW, week));
    assert_eq!(inbound_retry_at(0, NOW), NOW.plus(30));
    assert_eq!(inbound_retry_at(1, NOW), NOW.plus(60));
    assert_eq!(inbound_retry_at(5, NOW), NOW.plus(900));
    assert_eq!(inbound_retry_at(50, NOW), NOW.plus(900));
    assert_eq!(
        outbox_expired_before(NOW, Duration::from_secs(86_400)),
        UnixTime(NOW.0 - 86_400)
    );
}

#[test]
fn report_finality() {
    let delivered = report_effect(pdu::Status::RECEIVED);
    assert_eq!(delivered.part_state, MessageState::Delivered);
    assert_eq!(delivered.failure, None);
    let trying = report_effect(pdu::Status::SME_BUSY);
    assert_eq!(trying.part_state, MessageState::Sent, "0x21: still trying");
    let failed = report_effect(pdu::Status::VALIDITY_EXPIRED);
    assert_eq!(failed.part_state, MessageState::Failed);
    assert_eq!(failed.failure.as_deref(), Some("status report: TP-ST 0x46"));
}

fn counts(queued: u32, sending: u32, sent: u32, delivered: u32, failed: u32) -> PartCounts {
    PartCounts {
        queued,
        sending,
        sent,
        delivered,
        failed,
        ..PartCounts::default()
    }
}

#[test]
fn message_state_from_parts() {
    let c = |queued, sending, sent, delivered, failed, unknown| PartCounts {
        unknown,
        ..counts(queued, sending, sent, delivered, failed)
    };
    assert_eq!(message_state(c(3, 0, 0, 0, 0, 0)), MessageState::Queued);
    assert_eq!(message_state(c(2, 1, 0, 0, 0, 0)), MessageState::Sending);
    assert_eq!(message_state(c(1, 0, 1, 0, 0, 0)), MessageState::Sending);
    assert_eq!(message_state(c(0, 0, 2, 1, 0, 0)), MessageState::Sent);
    assert_eq!(message_state(c(0, 0, 0, 3, 0, 0)), MessageState::Delivered);
    assert_eq!(
        message_state(c(0, 0, 1, 1, 0, 1)),
        MessageState::OutcomeUnknown
    );
    // One failed part fails the message, whatever the others say.
    assert_eq!(message_state(c(0, 0, 0, 2, 1, 1)), MessageState::Failed);
}

#[test]
fn delivery_unknown_needs_every_part_ended_and_none_failed_or_in_doubt() {
    let du = |n, base: PartCounts| PartCounts {
        delivery_unknown: n,
        ..base
    };
    use MessageState::*;
    // One part without a report among delivered ones: the message is unknown.
    assert_eq!(message_state(du(1, counts(0, 0, 0, 2, 0))), DeliveryUnknown);
    assert_eq!(message_state(du(3, counts(0, 0, 0, 0, 0))), DeliveryUnknown);
    // A part still waiting for its report keeps the message sent.
    assert_eq!(message_state(du(1, counts(0, 0, 1, 1, 0))), Sent);
    // Parts not gone out yet keep it sending, even when one already ended.
    assert_eq!(message_state(du(1, counts(1, 0, 0, 0, 0))), Sending);
    assert_eq!(message_state(du(1, counts(0, 1, 0, 0, 0))), Sending);
    // Failed wins, then outcome unknown (a policy still decides on it).
    assert_eq!(message_state(du(2, counts(0, 0, 0, 0, 1))), Failed);
    let in_doubt = PartCounts {
        unknown: 1,
        ..du(1, counts(0, 0, 0, 1, 0))
    };
    assert_eq!(message_state(in_doubt), OutcomeUnknown);
    assert!(is_final(DeliveryUnknown) && is_final(Delivered) && is_final(Failed));
    for not_final in [Queued, Sending, Sent, OutcomeUnknown] {
        assert!(!is_final(not_final), "{not_final:?}");
    }
}

#[test]
fn a_notification_is_due_for_a_final_message_that_asked_for_it() {
    use MessageState::*;
    let due = |state, pos, neg| notification_due(state, pos, neg, UnknownNotice::Failed);
    assert_eq!(due(Delivered, true, true), Some(Notice::Delivered));
    assert_eq!(due(Failed, true, true), Some(Notice::Failed));
    assert_eq!(due(Failed, true, false), None, "not asked");
    assert_eq!(due(Delivered, false, true), None, "not asked");
    for not_final in [Queued, Sending, Sent, OutcomeUnknown] {
        assert_eq!(due(not_final, true, true), None, "{not_final:?}");
    }
    let week = Duration::from_secs(7 * 86_400);
    assert!(!notice_given_up(UnixTime(NOW.0 - 7 * 86_400), NOW, week));
    assert!(notice_given_up(UnixTime(NOW.0 - 7 * 86_400 - 1), NOW, week));
}

#[test]
fn delivery_unknown_answers_a_request_for_negative_notifications() {
    use MessageState::DeliveryUnknown;
    let failed = UnknownNotice::Failed;
    let neutral = UnknownNotice::Neutral;
    assert_eq!(
        notification_due(DeliveryUnknown, false, true, failed),
        Some(Notice::Failed)
    );
    assert_eq!(
        notification_due(DeliveryUnknown, false, true, neutral),
        Some(Notice::Unknown)
    );
    // Not a success: a sender who asked only for positive ones hears nothing.
    for how in [failed, neutral] {
        assert_eq!(notification_due(DeliveryUnknown, true, false, how), None);
    }
}

#[test]
fn a_report_is_overdue_only_after_the_whole_window() {
    let window = Duration::from_secs(49 * 3600);
    let sent = UnixTime(NOW.0 - 49 * 3600);
    assert_eq!(reports_overdue_before(NOW, window), sent);
    assert!(
        !report_overdue(sent, NOW, window),
        "exactly the window: still waits"
    );
    assert!(
        report_overdue(sent.plus(-1), NOW, window),
        "one second more: overdue"
    );
    assert!(!report_overdue(NOW, NOW, window));
    // A part sent "in the future" (a clock stepped back) is not overdue.
    assert!(!report_overdue(NOW.plus(10), NOW, window));
    let one = Duration::from_secs(1);
    assert!(!report_overdue(NOW.plus(-1), NOW, one));
    assert!(report_overdue(NOW.plus(-2), NOW, one));
}

#[test]
fn send_retries_back_off_and_stop() {
    assert_eq!(send_retry(CmsClass::Permanent, 1, 5, NOW), Retry::Never);
    assert_eq!(
        send_retry(CmsClass::Transient, 1, 5, NOW),
        Retry::At(NOW.plus(30))
    );
    assert_eq!(
        send_retry(CmsClass::Transient, 2, 5, NOW),
        Retry::At(NOW.plus(60))
    );
    assert_eq!(
        send_retry(CmsClass::Transient, 4, 5, NOW),
        Retry::At(NOW.plus(240))
    );
    assert_eq!(
        send_retry(CmsClass::Transient, 5, 5, NOW),
        Retry::Never,
        "last attempt"
    );
    assert_eq!(
        send_retry(CmsClass::ModemState, 1, 5, NOW),
        Retry::At(NOW.plus(30))
    );
    assert_eq!(
        send_retry(CmsClass::Transient, 20, 50, NOW),
        Retry::At(NOW.plus(1800))
    );
    assert!(!requeue_unknown(OutcomeUnknown::Fail));
    assert!(requeue_unknown(OutcomeUnknown::Requeue));
}

#[test]
fn foreign_senders_reach_users_by_default_and_subscribers_only_when_allowed() {
    use crate::config::Federation;
    let default = Federation::default();
    let user = ForeignReach::User {
        blocked_sender: false,
    };
    assert_eq!(
        decide_foreign_inbound(user, "hi", "sip:a@x", &default),
        Ok(())
    );
    assert_eq!(
        decide_foreign_inbound(ForeignReach::Subscriber, "hi", "+4917", &default),
        Err(Refusal::ForeignNotAllowed("+4917".into()))
    );
    let sms = Federation {
        foreign_to_sms: true,
        ..Federation::default()
    };
    assert_eq!(
        decide_foreign_inbound(ForeignReach::Subscriber, "hi", "+4917", &sms),
        Ok(())
    );
    let closed = Federation {
        foreign_to_users: false,
        ..Federation::default()
    };
    assert_eq!(
        decide_foreign_inbound(user, "hi", "sip:a@x", &closed),
        Err(Refusal::ForeignNotAllowed("sip:a@x".into()))
    );
    assert_eq!(
        decide_foreign_inbound(
            ForeignReach::User {
                blocked_sender: true
            },
            "hi",
            "sip:a@x",
            &default
        ),
        Err(Refusal::BlockedByRecipient("sip:a@x".into()))
    );
    assert_eq!(
        decide_foreign_inbound(user, " \r\n", "sip:a@x", &default),
        Err(Refusal::EmptyMessage)
    );
}

#[test]
fn no_open_relay_between_foreign_domains() {
    let everything = crate::config::Federation {
        foreign_to_users: true,
        foreign_to_sms: true,
        ..crate::config::Federation::default()
    };
    assert_eq!(
        decide_foreign_inbound(ForeignReach::Foreign, "hi", "sip:b@third.test", &everything),
        Err(Refusal::ForeignNotAllowed("sip:b@third.test".into()))
    );
}

#[test]
fn outbound_to_foreign_users() {
    assert_eq!(decide_foreign_outbound("hi", false, "sip:j@o.test"), Ok(()));
    assert_eq!(
        decide_foreign_outbound("hi", true, "sip:j@o.test"),
        Err(Refusal::Blocked("sip:j@o.test".into()))
    );
    assert_eq!(
        decide_foreign_outbound("", false, "sip:j@o.test"),
        Err(Refusal::EmptyMessage)
    );
}

#[test]
fn a_reply_from_a_users_phone_goes_to_the_im_sender_as_that_user() {
    let (alice, bob, carol, f) = (UserId(1), UserId(2), UserId(3), UserId(9));
    let phone = PhoneReply {
        owner: bob,
        im_sender: alice,
    };
    // It beats contact owners, the last writer and the fallback.
    let snap = RouteSnapshot {
        owners: vec![carol],
        last_writer: Some(carol),
        fallback: Some(f),
        phone_reply: Some(phone),
        ..Default::default()
    };
    assert_eq!(route_reply(&snap), Some(alice));
    assert_eq!(reply_as(&snap, alice), Some(bob));
    // A retry keeps the choice, and still shows bob.
    let retry = RouteSnapshot {
        chosen: Some(alice),
        ..snap.clone()
    };
    assert_eq!(route_reply(&retry), Some(alice));
    assert_eq!(reply_as(&retry, alice), Some(bob));
    // Routed to someone else (chosen earlier): an SMS from the number.
    let other = RouteSnapshot {
        chosen: Some(carol),
        ..snap
    };
    assert_eq!(route_reply(&other), Some(carol));
    assert_eq!(reply_as(&other, carol), None);
    // No IM went to the phone: today's routing, from the number.
    let plain = RouteSnapshot {
        owners: vec![carol],
        ..Default::default()
    };
    assert_eq!(route_reply(&plain), Some(carol));
    assert_eq!(reply_as(&plain, carol), None);
}

#[test]
fn ims_go_to_the_phone_only_while_offline_with_preference_sms() {
    let mut bob = user(2);
    // Default: kept, whatever the presence.
    assert_eq!(offline_phone(&bob, Some(false)), None);
    bob.settings.phone = Some(msisdn("+491701234567"));
    assert_eq!(offline_phone(&bob, Some(false)), None);
    bob.settings.offline_delivery = crate::store::OfflineDelivery::Sms;
    assert_eq!(
        offline_phone(&bob, Some(false)).map(Msisdn::as_str),
        Some("+491701234567")
    );
    // Online, or nobody can tell: an IM as usual.
    assert_eq!(offline_phone(&bob, Some(true)), None);
    assert_eq!(offline_phone(&bob, None), None);
    bob.settings.phone = None;
    assert_eq!(offline_phone(&bob, Some(false)), None);
}

#[test]
fn an_im_the_sms_path_refuses_is_kept_unless_the_store_failed() {
    let minute = Duration::from_secs(60);
    for kept in [
        Refusal::SmsNotAllowed("sip:a@x".into()),
        Refusal::RateLimited {
            limit: 1,
            retry_after: minute,
        },
        Refusal::DailyCap(1),
        Refusal::OptedOut("+491701234567".into()),
        Refusal::NoModem {
            retry_after: minute,
        },
        Refusal::AnonymityForbidden,
    ] {
        assert!(keep_instead_of_sms(&kept), "{kept:?}");
    }
    assert!(!keep_instead_of_sms(&Refusal::StoreBusy {
        retry_after: minute
    }));
    assert!(!keep_instead_of_sms(&Refusal::Internal {
        retry_after: minute
    }));
}
