//! Contact lists, presence and blocking, request → response, against the real
//! bridge on an in-memory store, without HTTP.

mod imps_support;

use imps_support::{BOB, CAROL, rig, send, user};
use smsbridge::imps::csp::Mode;

#[tokio::test]
async fn contact_lists_are_the_bridge_contacts() {
    let r = rig();
    let sid = r.login("wv:alice@sms.test", "secret").await;
    let s = Some(sid.as_str());
    let a = r.ask(s, "<GetList-Request/>").await;
    assert_eq!(
        (a.primitive.name.as_str(), a.code()),
        ("GetList-Response", Some(200))
    );
    assert_eq!(a.text(&["ContactList"]), Some("wv:alice/~SMS@sms.test"));
    assert_eq!(
        a.text(&["DefaultContactList"]),
        Some("wv:alice/~SMS@sms.test")
    );

    let create = "<CreateList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList></CreateList-Request>";
    assert_eq!(r.ask(s, create).await.code(), Some(200));
    assert_eq!(r.ask(s, create).await.code(), Some(701), "exists");
    let manage = format!(
        "<ListManage-Request><ContactList>wv:alice/~Friends@sms.test</ContactList><AddNickList>\
         <NickName><Name>Carol</Name><UserID>wv:{CAROL}@sms.test</UserID></NickName>\
         <NickName><Name>Dave</Name><UserID>wv:dave@sms.test</UserID></NickName></AddNickList>\
         <ReceiveList>T</ReceiveList></ListManage-Request>"
    );
    let a = r.ask(s, &manage).await;
    assert_eq!(
        (a.primitive.name.as_str(), a.code()),
        ("ListManage-Response", Some(200)),
        "{}",
        a.raw
    );
    let nicks: Vec<(String, String)> = a
        .primitive
        .at(&["NickList"])
        .unwrap()
        .children_named("NickName")
        .map(|n| {
            (
                n.text_at(&["Name"]).unwrap().to_owned(),
                n.text_at(&["UserID"]).unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        nicks,
        vec![
            ("Carol".to_owned(), format!("wv:{CAROL}@sms.test")),
            ("Dave".to_owned(), "wv:dave@sms.test".to_owned()),
        ]
    );
    // The SIP side sees the same contact (the bridge resolves the nickname).
    let contacts = r
        .shared
        .db(|st| st.contacts(Some("wv:alice@sms.test")))
        .await
        .unwrap();
    assert!(
        contacts
            .iter()
            .any(|c| c.msisdn.as_str() == CAROL && c.list_name == "Friends")
    );

    let remove = format!(
        "<ListManage-Request><ContactList>wv:alice/~Friends@sms.test</ContactList>\
         <RemoveNickList><UserID>wv:{CAROL}@sms.test</UserID></RemoveNickList><ReceiveList>T</ReceiveList></ListManage-Request>"
    );
    let a = r.ask(s, &remove).await;
    assert_eq!(a.code(), Some(200));
    assert_eq!(a.primitive.at(&["NickList"]).unwrap().children.len(), 1);
    let a = r
        .ask(s, "<ListManage-Request><ContactList>wv:alice/~Nope@sms.test</ContactList></ListManage-Request>")
        .await;
    assert_eq!(a.code(), Some(700));
    let delete = "<DeleteList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList></DeleteList-Request>";
    assert_eq!(r.ask(s, delete).await.code(), Some(200));
    assert_eq!(r.ask(s, delete).await.code(), Some(700));
    let a = r.ask(s, "<CreateList-Request/>").await;
    assert_eq!(a.code(), Some(400));
}

#[tokio::test]
async fn sms_only_presence_and_subscriptions() {
    let r = rig();
    let sid = r.login("wv:alice@sms.test", "secret").await;
    let s = Some(sid.as_str());
    let a = r
        .ask(
            s,
            &format!(
                "<GetPresence-Request>{}</GetPresence-Request>",
                user(&format!("wv:{BOB}@sms.test"))
            ),
        )
        .await;
    assert_eq!(
        (a.primitive.name.as_str(), a.code()),
        ("GetPresence-Response", Some(200)),
        "{}",
        a.raw
    );
    let p = a.primitive.child("Presence").unwrap();
    assert_eq!(p.text_at(&["UserID"]), Some(&*format!("wv:{BOB}@sms.test")));
    let sub = p.child("PresenceSubList").unwrap();
    assert_eq!(sub.text_at(&["OnlineStatus", "Qualifier"]), Some("T"));
    assert_eq!(sub.text_at(&["OnlineStatus", "PresenceValue"]), Some("T"));
    assert_eq!(
        sub.text_at(&["OnlineStatus", "ClientID", "MSISDN"]),
        Some(BOB)
    );
    assert_eq!(sub.text_at(&["ClientInfo", "Qualifier"]), Some("T"));
    assert_eq!(sub.text_at(&["ClientInfo", "ClientType"]), Some("CLI"));
    assert_eq!(
        sub.text_at(&["ClientInfo", "ClientID", "MSISDN"]),
        Some(BOB)
    );
    assert_eq!(
        sub.text_at(&["UserAvailability", "PresenceValue"]),
        Some("AVAILABLE")
    );
    assert_eq!(
        sub.text_at(&["StatusText", "PresenceValue"]),
        Some("SMS-only")
    );
    assert!(
        a.raw.contains(
            "<PresenceSubList xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-PA1.3\">"
        )
    );

    // The same through the contact list.
    let a = r.ask(s, "<GetPresence-Request><ContactList>wv:alice/~SMS@sms.test</ContactList></GetPresence-Request>").await;
    assert_eq!(a.code(), Some(200));
    assert_eq!(a.primitive.children_named("Presence").count(), 1);
    // Not in the list: not allowed.
    let a = r
        .ask(
            s,
            &format!(
                "<GetPresence-Request>{}</GetPresence-Request>",
                user(&format!("wv:{CAROL}@sms.test"))
            ),
        )
        .await;
    assert_eq!(a.code(), Some(403));
    assert!(a.primitive.child("Presence").is_none());
    let a = r.ask(s, "<GetPresence-Request/>").await;
    assert_eq!(a.code(), Some(400));

    let a = r
        .ask(
            s,
            &format!(
                "<SubscribePresence-Request>{}</SubscribePresence-Request>",
                user("Bob")
            ),
        )
        .await;
    assert_eq!((a.primitive.name.as_str(), a.code()), ("Status", Some(200)));
    assert!(a.poll, "the initial notification waits: Poll T");
    let n = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(n.mode, Some(Mode::Request));
    assert_eq!(n.primitive.name, "PresenceNotification-Request");
    assert_eq!(n.transaction.as_deref(), Some("s1"));
    assert_eq!(
        n.text(&["Presence", "PresenceSubList", "StatusText", "PresenceValue"]),
        Some("SMS-only")
    );
    // The client's Status answer gets an empty body.
    let ack = smsbridge::imps::csp::encode(&smsbridge::imps::csp::Outgoing {
        session_id: Some(sid.clone()),
        transaction_id: Some("s1".into()),
        mode: Mode::Response,
        poll: false,
        primitive: smsbridge::imps::csp::status(200, ""),
    });
    assert!(r.raw(&ack).await.empty);
    let a = r
        .ask(
            s,
            &format!(
                "<UnsubscribePresence-Request>{}</UnsubscribePresence-Request>",
                user("Bob")
            ),
        )
        .await;
    assert_eq!(a.code(), Some(200));
    let a = r
        .ask(
            s,
            &format!(
                "<SubscribePresence-Request>{}</SubscribePresence-Request>",
                user(&format!("wv:{CAROL}@sms.test"))
            ),
        )
        .await;
    assert_eq!(a.code(), Some(403), "not in the watcher's lists");
}

#[tokio::test]
async fn presence_between_imps_users_and_update_presence() {
    let r = rig();
    let alice = r.login("wv:alice@sms.test", "secret").await;
    let a = Some(alice.as_str());
    let add = "<ListManage-Request><ContactList>wv:alice/~SMS@sms.test</ContactList><AddNickList>\
               <NickName><Name>Dave</Name><UserID>wv:dave@sms.test</UserID></NickName></AddNickList></ListManage-Request>";
    assert_eq!(r.ask(a, add).await.code(), Some(200));
    // Dave lets Alice see him (his policy decides, issue 14), and leaves.
    let dave = r.login("wv:dave@sms.test", "pw2").await;
    let allow = "<PresenceAuth-User><UserID>wv:alice@sms.test</UserID><Acceptance>T</Acceptance>\
                 </PresenceAuth-User>";
    assert_eq!(r.ask(Some(&dave), allow).await.code(), Some(200));
    assert_eq!(
        r.ask(Some(&dave), "<Logout-Request/>").await.code(),
        Some(200)
    );
    let got = r
        .ask(
            a,
            &format!(
                "<GetPresence-Request>{}</GetPresence-Request>",
                user("wv:dave@sms.test")
            ),
        )
        .await;
    assert_eq!(
        got.text(&[
            "Presence",
            "PresenceSubList",
            "OnlineStatus",
            "PresenceValue"
        ]),
        Some("F")
    );
    assert_eq!(
        r.ask(
            a,
            &format!(
                "<SubscribePresence-Request>{}</SubscribePresence-Request>",
                user("wv:dave@sms.test")
            )
        )
        .await
        .code(),
        Some(200)
    );
    let _initial = r.ask(a, "<Polling-Request/>").await;
    let dave = r.login("wv:dave@sms.test", "pw2").await;
    let n = r.ask(a, "<Polling-Request/>").await;
    assert_eq!(n.primitive.name, "PresenceNotification-Request");
    assert_eq!(
        n.text(&[
            "Presence",
            "PresenceSubList",
            "OnlineStatus",
            "PresenceValue"
        ]),
        Some("T")
    );
    let upd = "<UpdatePresence-Request><PresenceSubList><UserAvailability><Qualifier>T</Qualifier>\
               <PresenceValue>DISCREET</PresenceValue></UserAvailability><StatusText><Qualifier>T</Qualifier>\
               <PresenceValue>at lunch</PresenceValue></StatusText></PresenceSubList></UpdatePresence-Request>";
    assert_eq!(r.ask(Some(&dave), upd).await.code(), Some(200));
    let n = r.ask(a, "<Polling-Request/>").await;
    assert_eq!(
        n.text(&["Presence", "PresenceSubList", "StatusText", "PresenceValue"]),
        Some("at lunch")
    );
    let bad = "<UpdatePresence-Request><PresenceSubList><Bogus/></PresenceSubList></UpdatePresence-Request>";
    assert_eq!(r.ask(Some(&dave), bad).await.code(), Some(750));
    assert_eq!(
        r.ask(Some(&dave), "<UpdatePresence-Request/>").await.code(),
        Some(400)
    );
}

#[tokio::test]
async fn block_entity_and_blocked_list() {
    let r = rig();
    let sid = r.login("wv:alice@sms.test", "secret").await;
    let s = Some(sid.as_str());
    let block = format!(
        "<BlockEntity-Request><BlockList><AddList><UserID>wv:{BOB}@sms.test</UserID><UserID>wv:{CAROL}@sms.test</UserID></AddList></BlockList>\
         <BlockListInUse>T</BlockListInUse><GrantListInUse>F</GrantListInUse></BlockEntity-Request>"
    );
    let a = r.ask(s, &block).await;
    assert_eq!(
        (a.primitive.name.as_str(), a.code()),
        ("Status", Some(200)),
        "{}",
        a.raw
    );
    let a = r.ask(s, "<GetBlockedList-Request/>").await;
    assert_eq!(
        (a.primitive.name.as_str(), a.code()),
        ("GetBlockedList-Response", Some(200))
    );
    let blocked: Vec<&str> = a
        .primitive
        .at(&["BlockList", "EntityList"])
        .unwrap()
        .children_named("UserID")
        .map(|u| u.text.as_str())
        .collect();
    assert_eq!(blocked.len(), 2);
    assert!(blocked.contains(&&*format!("wv:{BOB}@sms.test")));
    let a = r.ask(s, &send("Bob", "by mistake", false)).await;
    assert_eq!(a.code(), Some(532), "blocked");
    let a = r
        .ask(
            s,
            &format!("<GetPresence-Request>{}</GetPresence-Request>", user("Bob")),
        )
        .await;
    assert_eq!(a.code(), Some(532));
    let unblock = format!(
        "<BlockEntity-Request><BlockList><RemoveList><UserID>wv:{BOB}@sms.test</UserID></RemoveList></BlockList></BlockEntity-Request>"
    );
    assert_eq!(r.ask(s, &unblock).await.code(), Some(200));
    assert_eq!(
        r.ask(s, &send("Bob", "now fine", false)).await.code(),
        Some(200)
    );
    let bad = "<BlockEntity-Request><BlockList><AddList><UserID>wv:nobody@sms.test</UserID></AddList></BlockList></BlockEntity-Request>";
    assert_eq!(r.ask(s, bad).await.code(), Some(531));
}

/// Issue 18: SubscribePresence on a contact list that does not exist answers
/// 700 (as ListManage does), on an existing empty list 200, and queues no
/// empty PresenceNotification-Request.
#[tokio::test]
async fn subscribe_presence_on_an_unknown_or_empty_list() {
    let r = rig();
    let sid = r.login("wv:alice@sms.test", "secret").await;
    let s = Some(sid.as_str());
    let subscribe = |list: &str| {
        format!(
            "<SubscribePresence-Request><ContactList>wv:alice/~{list}@sms.test</ContactList>\
             </SubscribePresence-Request>"
        )
    };
    let a = r.ask(s, &subscribe("Nope")).await;
    assert_eq!(
        (a.primitive.name.as_str(), a.code()),
        ("Status", Some(700)),
        "{}",
        a.raw
    );
    let a = r
        .ask(
            s,
            "<CreateList-Request><ContactList>wv:alice/~Empty@sms.test</ContactList></CreateList-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = r.ask(s, &subscribe("Empty")).await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    assert!(!a.poll, "nothing to notify");
    let a = r.ask(s, "<Polling-Request/>").await;
    assert!(a.empty, "{}", a.raw);
    let a = r.ask(s, "<SubscribePresence-Request/>").await;
    assert_eq!(a.code(), Some(400));
}

/// Issue 18: a CreateList answered with a failure (an unknown user of ours;
/// a user of another domain would be taken since issue 13) leaves no list
/// (which GetList would then offer as the default), and a CSP 1.1 list id
/// (`wv:user/name@domain`, no `~`) names the list `name`.
#[tokio::test]
async fn a_failed_create_list_leaves_nothing_and_csp_1_1_list_ids_read() {
    let r = rig();
    let sid = r.login("wv:alice@sms.test", "secret").await;
    let s = Some(sid.as_str());
    let before = r.ask(s, "<GetList-Request/>").await;
    let a = r
        .ask(
            s,
            "<CreateList-Request><ContactList>wv:alice/~Broken@sms.test</ContactList><NickList>\
             <NickName><Name>X</Name><UserID>wv:nobody@sms.test</UserID></NickName>\
             </NickList></CreateList-Request>",
        )
        .await;
    assert_ne!(a.code(), Some(200), "{}", a.raw);
    let after = r.ask(s, "<GetList-Request/>").await;
    assert_eq!(after.primitive, before.primitive, "{}", after.raw);
    assert!(!after.raw.contains("Broken"));

    let a = r
        .ask(
            s,
            "<CreateList-Request><ContactList>wv:alice/Friends@sms.test</ContactList></CreateList-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let lists = r.ask(s, "<GetList-Request/>").await;
    let ids: Vec<&str> = lists
        .primitive
        .children_named("ContactList")
        .map(|c| c.text.as_str())
        .collect();
    assert!(ids.contains(&"wv:alice/~Friends@sms.test"), "{ids:?}");
    let a = r
        .ask(
            s,
            "<ListManage-Request><ContactList>wv:alice/Friends@sms.test</ContactList>\
             <ReceiveList>T</ReceiveList></ListManage-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
}
