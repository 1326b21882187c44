//! PIDF (RFC 3863) with RPID (RFC 4480) and the data model (RFC 4479): the
//! document of an SMS-only subscriber (always `open`, `contact tel:+…`, the
//! note "SMS-only"), the document of a user of the bridge built from their
//! [`Presence`], and the reader that turns a peer's document (a NOTIFY from
//! another domain, a PUBLISH) into a [`Presence`]. `docs/presence-mapping.md`
//! has the table.

use crate::presence::{Availability, ClientInfo, Presence};
use crate::xml::{self, Element, Rules, XmlError};

/// The PIDF namespace.
pub(crate) const NS: &str = "urn:ietf:params:xml:ns:pidf";
/// The data-model namespace (`dm:person`).
pub(crate) const DM_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// The RPID namespace (`rpid:activities`, `rpid:mood`, `rpid:class`).
pub(crate) const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// The note every subscriber carries.
pub(crate) const NOTE: &str = "SMS-only";
/// The CSP `ClientType` values, the only ones read back from `rpid:class`.
const CLIENT_TYPES: &[&str] = &["MOBILE_PHONE", "COMPUTER", "PDA", "CLI", "OTHER"];

/// The document for `entity` (`sip:+E164@domain`) reachable at `tel:<msisdn>`;
/// with `unavailable` (the subscriber opted out, say) `closed`, with why as
/// the note (`SubscriberPresence::unavailable`).
pub(crate) fn document(entity: &str, msisdn: &str, unavailable: Option<&str>) -> String {
    let (status, note) = match unavailable {
        Some(why) => ("closed", format!("{NOTE}: {why}")),
        None => ("open", NOTE.to_owned()),
    };
    Element::new("presence")
        .attr("xmlns", NS)
        .attr("xmlns:dm", DM_NS)
        .attr("entity", entity)
        .with(
            Element::new("tuple")
                .attr("id", "sms")
                .with(basic(status))
                .with(Element::text("contact", &format!("tel:{msisdn}")))
                .with(Element::text("note", &note)),
        )
        .with(
            Element::new("dm:person")
                .attr("id", "p")
                .with(Element::text("dm:note", &note)),
        )
        .to_document()
}

/// The presence document of a user of the bridge (IMPS or SIP) for any SIP
/// watcher, local or of another domain: one tuple (`basic`, the client's
/// device ID, `contact`, the note), the person (RPID activities and mood,
/// the note) and, when the client is known, the device (`rpid:class` for
/// the CSP ClientType, producer and model as its note).
pub(crate) fn presence_document(entity: &str, contact: &str, p: &Presence) -> String {
    let device_id = p.client.as_ref().map(|_| device_id(entity));
    let note = p.note.as_deref().filter(|n| !n.is_empty());
    let tuple = Element::new("tuple")
        .attr("id", "im")
        .with(basic(if p.open { "open" } else { "closed" }))
        .with_all(
            device_id
                .as_deref()
                .map(|d| Element::text("dm:deviceID", d)),
        )
        .with(Element::text("contact", contact))
        .with_all(note.map(|n| Element::text("note", n)));
    let mut activities: Vec<&str> = p
        .activities
        .iter()
        .map(String::as_str)
        .filter(|a| is_token(a))
        .collect();
    if activities.is_empty()
        && let Some(a) = p.availability.and_then(Availability::activity)
    {
        activities.push(a);
    }
    let person = Element::new("dm:person")
        .attr("id", "p")
        .with_all((!activities.is_empty()).then(|| {
            Element::new("rpid:activities").with_all(
                activities
                    .iter()
                    .map(|a| Element::new(&format!("rpid:{a}"))),
            )
        }))
        .with_all(
            p.mood
                .as_deref()
                .filter(|m| is_token(m))
                .map(|m| Element::new("rpid:mood").with(Element::new(&format!("rpid:{m}")))),
        )
        .with_all(note.map(|n| Element::text("dm:note", n)));
    let device = p.client.as_ref().zip(device_id).map(|(c, id)| {
        let label: Vec<&str> = [c.producer.as_deref(), c.model.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        Element::new("dm:device")
            .attr("id", "client")
            .with_all(
                c.client_type
                    .as_deref()
                    .map(|t| Element::text("rpid:class", t)),
            )
            .with(Element::text("dm:deviceID", &id))
            .with_all((!label.is_empty()).then(|| Element::text("dm:note", &label.join(" "))))
    });
    Element::new("presence")
        .attr("xmlns", NS)
        .attr("xmlns:dm", DM_NS)
        .attr("xmlns:rpid", RPID_NS)
        .attr("entity", entity)
        .with(tuple)
        .with(person)
        .with_all(device)
        .to_document()
}

/// A stable device ID for the entity's client: a name-based (MD5, version 3)
/// UUID URN, so every NOTIFY names the same device.
fn device_id(entity: &str) -> String {
    let h = super::digest::md5_hex(&format!("smsbridge client {entity}"));
    // Version 3 and the RFC 4122 variant in their nibbles.
    let variant = match u8::from_str_radix(&h[16..17], 16) {
        Ok(v) => format!("{:x}", 8 | (v & 3)),
        Err(_) => "8".into(),
    };
    format!(
        "urn:uuid:{}-{}-3{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        variant,
        &h[17..20],
        &h[20..32]
    )
}

/// An RPID element name we are willing to write as `rpid:<name>`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn basic(value: &str) -> Element {
    Element::new("status").with(Element::text("basic", value))
}

/// Reads a PIDF document (with RPID and the data model) into a [`Presence`],
/// under the SIP rules of the hardened reader (no DOCTYPE, no entities,
/// bounded size and depth). Open when any tuple is `open`. Activities and
/// mood from the person, else from the open tuples, else from any tuple;
/// the note from the person, else the document, else the open tuples, else
/// any tuple, preferring one without `xml:lang`; the client from a
/// `dm:device`. Unknown elements are ignored.
pub(crate) fn read(body: &[u8]) -> Result<Presence, XmlError> {
    let root = xml::parse(body, &Rules::SIP)?;
    if !root.is(NS, "presence") {
        return Err(XmlError::Unexpected(format!("root {}", root.name)));
    }
    let tuples: Vec<&Element> = root.children_ns(NS, "tuple").collect();
    let is_open = |t: &&Element| {
        t.child_ns(NS, "status")
            .and_then(|s| s.child_ns(NS, "basic"))
            .is_some_and(|b| b.text.trim().eq_ignore_ascii_case("open"))
    };
    let open = tuples.iter().any(is_open);
    let persons: Vec<&Element> = root.children_ns(DM_NS, "person").collect();
    let (open_tuples, other_tuples): (Vec<&Element>, Vec<&Element>) =
        tuples.iter().copied().partition(is_open);
    // Where RPID sits: the person, then the tuples (and, as older clients
    // wrote it, inside a tuple's status).
    let tuple_rpid = |ts: &[&Element]| -> Vec<Element> {
        ts.iter()
            .flat_map(|t| {
                let inner = t
                    .child_ns(NS, "status")
                    .into_iter()
                    .flat_map(|s| &s.children);
                t.children.iter().chain(inner).cloned()
            })
            .collect()
    };
    let person_rpid: Vec<Element> = persons.iter().flat_map(|p| p.children.clone()).collect();
    let sources = [
        person_rpid,
        tuple_rpid(&open_tuples),
        tuple_rpid(&other_tuples),
    ];
    let activities = sources
        .iter()
        .map(|els| rpid_values(els, "activities"))
        .find(|a| !a.is_empty())
        .unwrap_or_default();
    let mood = sources
        .iter()
        .find_map(|els| rpid_values(els, "mood").into_iter().next());
    let availability = activities
        .iter()
        .filter_map(|a| Availability::of_activity(a))
        .max_by_key(|a| match a {
            Availability::Available => 0,
            Availability::Discreet => 1,
            Availability::NotAvailable => 2,
        });
    let person_notes: Vec<&Element> = persons
        .iter()
        .flat_map(|p| p.children_ns(DM_NS, "note"))
        .collect();
    let doc_notes: Vec<&Element> = root.children_ns(NS, "note").collect();
    let note = [
        person_notes,
        doc_notes,
        notes_of(&open_tuples),
        notes_of(&other_tuples),
    ]
    .iter()
    .find_map(|ns| pick_note(ns));
    let client = root.children_ns(DM_NS, "device").find_map(client_of);
    Ok(Presence {
        open,
        availability,
        activities,
        mood,
        note,
        client,
    })
}

/// The PIDF notes of these tuples, in order.
fn notes_of<'a>(tuples: &[&'a Element]) -> Vec<&'a Element> {
    tuples
        .iter()
        .flat_map(|t| t.children_ns(NS, "note"))
        .collect()
}

/// The element names inside the RPID `container` (`activities`, `mood`)
/// among `els`, in order, without `unknown` and repeats.
fn rpid_values(els: &[Element], container: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in els.iter().filter(|e| e.is(RPID_NS, container)) {
        for v in c
            .children
            .iter()
            .filter(|v| v.ns.as_deref() == Some(RPID_NS))
        {
            if v.name != "unknown" && is_token(&v.name) && !out.contains(&v.name) {
                out.push(v.name.clone());
            }
        }
    }
    out
}

/// The note to show: the first without `xml:lang`, else the first; empty
/// notes do not count.
fn pick_note(notes: &[&Element]) -> Option<String> {
    let texts: Vec<(&Element, &str)> = notes
        .iter()
        .map(|n| (*n, n.text.trim()))
        .filter(|(_, t)| !t.is_empty())
        .collect();
    texts
        .iter()
        .find(|(n, _)| n.attribute("lang").is_none())
        .or_else(|| texts.first())
        .map(|(_, t)| (*t).to_owned())
}

/// The client a `dm:device` describes: `rpid:class` when it is a CSP
/// ClientType, its note as the model.
fn client_of(device: &Element) -> Option<ClientInfo> {
    let client_type = device
        .children_ns(RPID_NS, "class")
        .map(|c| c.text.trim())
        .find(|t| CLIENT_TYPES.contains(t))
        .map(str::to_owned);
    let model = pick_note(&device.children_ns(DM_NS, "note").collect::<Vec<_>>());
    (client_type.is_some() || model.is_some()).then_some(ClientInfo {
        client_type,
        producer: None,
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/pidf/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn presence(open: bool) -> Presence {
        Presence {
            open,
            ..Presence::default()
        }
    }

    #[test]
    fn exact_subscriber_document_and_reread() {
        let doc = document("sip:+491715550001@sms.example", "+491715550001", None);
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
             xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
             entity=\"sip:+491715550001@sms.example\">\
             <tuple id=\"sms\"><status><basic>open</basic></status>\
             <contact>tel:+491715550001</contact><note>SMS-only</note></tuple>\
             <dm:person id=\"p\"><dm:note>SMS-only</dm:note></dm:person></presence>"
        );
        let p = read(doc.as_bytes()).unwrap();
        assert_eq!(
            p,
            Presence {
                open: true,
                note: Some(NOTE.into()),
                ..Presence::default()
            }
        );
    }

    #[test]
    fn an_opted_out_subscriber_is_closed_with_why() {
        let doc = document(
            "sip:+491715550001@sms.example",
            "+491715550001",
            Some("opted out of messages (STOP)"),
        );
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
             xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
             entity=\"sip:+491715550001@sms.example\">\
             <tuple id=\"sms\"><status><basic>closed</basic></status>\
             <contact>tel:+491715550001</contact>\
             <note>SMS-only: opted out of messages (STOP)</note></tuple>\
             <dm:person id=\"p\"><dm:note>SMS-only: opted out of messages (STOP)</dm:note>\
             </dm:person></presence>"
        );
        let p = read(doc.as_bytes()).unwrap();
        assert!(!p.open);
        assert_eq!(
            p.note.as_deref(),
            Some("SMS-only: opted out of messages (STOP)")
        );
    }

    #[test]
    fn escapes_the_entity() {
        let doc = document("sip:a\"&<@x", "+1", None);
        assert!(doc.contains("entity=\"sip:a&quot;&amp;&lt;@x\""), "{doc}");
        let root = xml::parse(doc.as_bytes(), &Rules::SIP).unwrap();
        assert_eq!(root.attribute("entity"), Some("sip:a\"&<@x"));
    }

    #[test]
    fn a_user_online_with_nothing_more_said() {
        assert_eq!(
            presence_document(
                "sip:erin@sms.example",
                "sip:erin@sms.example",
                &Presence::online()
            ),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
             xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
             xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" \
             entity=\"sip:erin@sms.example\"><tuple id=\"im\"><status><basic>open</basic></status>\
             <contact>sip:erin@sms.example</contact></tuple><dm:person id=\"p\"/></presence>"
        );
        let doc = presence_document(
            "sip:erin@sms.example",
            "sip:erin@sms.example",
            &presence(false),
        );
        assert_eq!(read(doc.as_bytes()).unwrap(), Presence::offline());
    }

    #[test]
    fn everything_written_is_read_back() {
        let p = Presence {
            open: true,
            availability: Some(Availability::Discreet),
            activities: vec!["meeting".into(), "on-the-phone".into()],
            mood: Some("happy".into()),
            note: Some("In a meeting <until 3> & then free".into()),
            client: Some(ClientInfo {
                client_type: Some("MOBILE_PHONE".into()),
                producer: Some("Nokia".into()),
                model: Some("6630".into()),
            }),
        };
        let doc = presence_document("sip:erin@sms.example", "sip:erin@sms.example", &p);
        assert!(
            doc.contains(
                "<dm:person id=\"p\"><rpid:activities><rpid:meeting/><rpid:on-the-phone/>\
                 </rpid:activities><rpid:mood><rpid:happy/></rpid:mood>\
                 <dm:note>In a meeting &lt;until 3&gt; &amp; then free</dm:note></dm:person>"
            ),
            "{doc}"
        );
        assert!(
            doc.contains("<note>In a meeting &lt;until 3&gt; &amp; then free</note></tuple>"),
            "{doc}"
        );
        assert!(
            doc.contains(
                "<dm:device id=\"client\"><rpid:class>MOBILE_PHONE</rpid:class>\
                 <dm:deviceID>urn:uuid:"
            ),
            "{doc}"
        );
        assert!(
            doc.contains("<dm:note>Nokia 6630</dm:note></dm:device>"),
            "{doc}"
        );
        let back = read(doc.as_bytes()).unwrap();
        // Producer and model come back as one model: the device has one note.
        let mut want = p.clone();
        want.client = Some(ClientInfo {
            client_type: Some("MOBILE_PHONE".into()),
            producer: None,
            model: Some("Nokia 6630".into()),
        });
        assert_eq!(back, want);
        // The device ID is a version-3 UUID, the same in every document.
        let id = doc
            .split("<dm:deviceID>")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap();
        assert_eq!(id.len(), "urn:uuid:".len() + 36, "{id}");
        assert_eq!(&id[23..24], "3", "{id}");
        assert!(matches!(&id[28..29], "8" | "9" | "a" | "b"), "{id}");
        assert_eq!(
            presence_document("sip:erin@sms.example", "x", &p)
                .matches(id)
                .count(),
            2
        );
    }

    #[test]
    fn availability_alone_becomes_an_activity() {
        for (a, activity) in [
            (Availability::Discreet, Some("busy")),
            (Availability::NotAvailable, Some("away")),
            (Availability::Available, None),
        ] {
            let p = Presence {
                open: true,
                availability: Some(a),
                ..Presence::default()
            };
            let doc = presence_document("sip:e@x", "sip:e@x", &p);
            let back = read(doc.as_bytes()).unwrap();
            assert_eq!(
                back.activities.first().map(String::as_str),
                activity,
                "{doc}"
            );
            let want = (a != Availability::Available).then_some(a);
            assert_eq!(back.availability, want, "{doc}");
        }
    }

    #[test]
    fn names_that_are_no_xml_names_are_not_written() {
        let p = Presence {
            open: true,
            activities: vec!["a b".into(), "<x>".into(), "busy".into()],
            mood: Some("1sad".into()),
            ..Presence::default()
        };
        let doc = presence_document("sip:e@x", "sip:e@x", &p);
        assert!(
            doc.contains("<rpid:activities><rpid:busy/></rpid:activities>"),
            "{doc}"
        );
        assert!(!doc.contains("rpid:mood"), "{doc}");
    }

    #[test]
    fn baresip_publications() {
        let open = read(&fixture("baresip-publish-open.xml")).unwrap();
        assert_eq!(open, Presence::online());
        let closed = read(&fixture("baresip-publish-closed.xml")).unwrap();
        assert_eq!(closed, Presence::offline());
        // Its first publication, before any status is set, says "unknown":
        // not open.
        let initial = read(&fixture("baresip-publish-unknown.xml")).unwrap();
        assert_eq!(initial, Presence::offline());
    }

    #[test]
    fn kamailio_notifies() {
        assert_eq!(
            read(&fixture("kamailio-notify-open.xml")).unwrap(),
            Presence::online()
        );
        assert_eq!(
            read(&fixture("kamailio-notify-closed.xml")).unwrap(),
            Presence::offline()
        );
        // Its own body for a withdrawn publication: closed, no person.
        assert_eq!(
            read(&fixture("kamailio-notify-withdrawn.xml")).unwrap(),
            Presence::offline()
        );
    }

    #[test]
    fn kamailio_dummy_presence() {
        let p = read(&fixture("kamailio-dummy-presence.xml")).unwrap();
        assert_eq!(
            p,
            Presence {
                open: true,
                note: Some("Available".into()),
                ..Presence::default()
            }
        );
    }

    #[test]
    fn several_tuples_person_and_device() {
        let p = read(&fixture("rpid-rich.xml")).unwrap();
        assert_eq!(
            p,
            Presence {
                // One tuple closed, one open: open.
                open: true,
                availability: Some(Availability::Discreet),
                // `unknown` says nothing; `place-type` is not an activity.
                activities: vec!["meeting".into(), "on-the-phone".into()],
                mood: Some("happy".into()),
                // The person's note without xml:lang, not the tuples'.
                note: Some("In a meeting & on a call".into()),
                client: Some(ClientInfo {
                    client_type: Some("COMPUTER".into()),
                    producer: None,
                    model: Some("Linphone 5.2".into()),
                }),
            }
        );
    }

    #[test]
    fn rpid_in_a_tuple_and_a_tuple_note() {
        let p = read(&fixture("tuple-rpid.xml")).unwrap();
        assert_eq!(
            p,
            Presence {
                open: true,
                availability: Some(Availability::NotAvailable),
                activities: vec!["away".into()],
                mood: None,
                note: Some("Gone fishing".into()),
                client: None,
            }
        );
    }

    #[test]
    fn notes_prefer_no_language_then_the_first() {
        let doc = "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:a@b\">\
                   <tuple id=\"t\"><status><basic>closed</basic></status>\
                   <note xml:lang=\"de\">Weg</note><note xml:lang=\"en\">Gone</note></tuple>\
                   <tuple id=\"u\"><status><basic>closed</basic></status><note> </note></tuple>\
                   </presence>";
        let p = read(doc.as_bytes()).unwrap();
        assert_eq!((p.open, p.note.as_deref()), (false, Some("Weg")));
    }

    #[test]
    fn the_most_withdrawn_activity_sets_availability() {
        let doc = "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
                   xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
                   xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:a@b\">\
                   <dm:person id=\"p\"><rpid:activities><rpid:busy/><rpid:sleeping/>\
                   <rpid:tv/><rpid:busy/></rpid:activities></dm:person></presence>";
        let p = read(doc.as_bytes()).unwrap();
        assert_eq!(p.activities, ["busy", "sleeping", "tv"]);
        assert_eq!(p.availability, Some(Availability::NotAvailable));
        assert!(!p.open, "no tuple, nothing open");
    }

    #[test]
    fn hostile_and_foreign_documents_are_refused() {
        assert!(matches!(
            read(&fixture("hostile-entities.xml")),
            Err(XmlError::DocType)
        ));
        assert!(matches!(
            read(b"<presence xmlns=\"urn:example\"/>"),
            Err(XmlError::Unexpected(_))
        ));
        assert!(matches!(
            read(b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"><p:x/></presence>"),
            Err(XmlError::Malformed(_))
        ));
        let deep = format!(
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\">{}{}</presence>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        assert_eq!(read(deep.as_bytes()), Err(XmlError::TooBig));
        assert_eq!(read(&[0xff, 0xfe]), Err(XmlError::NotUtf8));
    }
}
