//! PIDF (RFC 3863, data model RFC 4479): the presence document of an SMS-only
//! subscriber, always `open`, with `contact tel:+…` and the note "SMS-only",
//! and a reader for tests and peers.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

#[cfg(test)]
use super::xml::{self, XmlError};

/// The PIDF namespace.
pub(crate) const NS: &str = "urn:ietf:params:xml:ns:pidf";
/// The data-model namespace (`dm:person`).
pub(crate) const DM_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// The note every subscriber carries.
pub(crate) const NOTE: &str = "SMS-only";

/// The document for `entity` (`sip:+E164@domain`) reachable at `tel:<msisdn>`.
pub(crate) fn document(entity: &str, msisdn: &str) -> String {
    let mut w = Writer::new(Vec::new());
    let mut ev = |e: Event<'_>| {
        // Writing to a Vec cannot fail.
        let _ = w.write_event(e);
    };
    ev(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    ev(Event::Start(BytesStart::new("presence").with_attributes([
        ("xmlns", NS),
        ("xmlns:dm", DM_NS),
        ("entity", entity),
    ])));
    ev(Event::Start(
        BytesStart::new("tuple").with_attributes([("id", "sms")]),
    ));
    ev(Event::Start(BytesStart::new("status")));
    ev(Event::Start(BytesStart::new("basic")));
    ev(Event::Text(BytesText::new("open")));
    ev(Event::End(BytesEnd::new("basic")));
    ev(Event::End(BytesEnd::new("status")));
    let contact = format!("tel:{msisdn}");
    for (name, text) in [("contact", contact.as_str()), ("note", NOTE)] {
        ev(Event::Start(BytesStart::new(name)));
        ev(Event::Text(BytesText::new(text)));
        ev(Event::End(BytesEnd::new(name)));
    }
    ev(Event::End(BytesEnd::new("tuple")));
    ev(Event::Start(
        BytesStart::new("dm:person").with_attributes([("id", "p")]),
    ));
    ev(Event::Start(BytesStart::new("dm:note")));
    ev(Event::Text(BytesText::new(NOTE)));
    ev(Event::End(BytesEnd::new("dm:note")));
    ev(Event::End(BytesEnd::new("dm:person")));
    ev(Event::End(BytesEnd::new("presence")));
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// The presence document of a user of the bridge (an IMPS user) for SIP
/// watchers: `open` while they are logged in, else `closed`.
pub(crate) fn user_document(entity: &str, open: bool) -> String {
    let mut w = Writer::new(Vec::new());
    let mut ev = |e: Event<'_>| {
        // Writing to a Vec cannot fail.
        let _ = w.write_event(e);
    };
    ev(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    ev(Event::Start(
        BytesStart::new("presence").with_attributes([("xmlns", NS), ("entity", entity)]),
    ));
    ev(Event::Start(
        BytesStart::new("tuple").with_attributes([("id", "im")]),
    ));
    ev(Event::Start(BytesStart::new("status")));
    ev(Event::Start(BytesStart::new("basic")));
    ev(Event::Text(BytesText::new(if open {
        "open"
    } else {
        "closed"
    })));
    ev(Event::End(BytesEnd::new("basic")));
    ev(Event::End(BytesEnd::new("status")));
    ev(Event::Start(BytesStart::new("contact")));
    ev(Event::Text(BytesText::new(entity)));
    ev(Event::End(BytesEnd::new("contact")));
    ev(Event::End(BytesEnd::new("tuple")));
    ev(Event::End(BytesEnd::new("presence")));
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// What a PIDF document says, flattened.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Presence {
    pub(crate) entity: String,
    /// (id, basic, contact, notes) per tuple.
    pub(crate) tuples: Vec<(String, String, Option<String>, Vec<String>)>,
    /// `dm:person/dm:note` texts.
    pub(crate) person_notes: Vec<String>,
}

/// Reads a PIDF document.
#[cfg(test)]
pub(crate) fn parse(input: &str) -> Result<Presence, XmlError> {
    let root = xml::parse(input)?;
    if !root.is(NS, "presence") {
        return Err(XmlError::Unexpected(format!("root {}", root.name)));
    }
    let entity = root
        .attr("entity")
        .ok_or_else(|| XmlError::Unexpected("no entity".into()))?
        .to_owned();
    let tuples = root
        .children_named(NS, "tuple")
        .map(|t| {
            let basic = t
                .child(NS, "status")
                .and_then(|s| s.child(NS, "basic"))
                .map(|b| b.text.trim().to_owned())
                .unwrap_or_default();
            let contact = t.child(NS, "contact").map(|c| c.text.trim().to_owned());
            let notes = t
                .children_named(NS, "note")
                .map(|n| n.text.clone())
                .collect();
            (
                t.attr("id").unwrap_or_default().to_owned(),
                basic,
                contact,
                notes,
            )
        })
        .collect();
    let person_notes = root
        .children_named(DM_NS, "person")
        .flat_map(|p| p.children_named(DM_NS, "note").map(|n| n.text.clone()))
        .collect();
    Ok(Presence {
        entity,
        tuples,
        person_notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_document_and_reparse() {
        let doc = document("sip:+491715550001@sms.example", "+491715550001");
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
        let p = parse(&doc).unwrap();
        assert_eq!(p.entity, "sip:+491715550001@sms.example");
        assert_eq!(
            p.tuples,
            vec![(
                "sms".to_owned(),
                "open".to_owned(),
                Some("tel:+491715550001".to_owned()),
                vec!["SMS-only".to_owned()]
            )]
        );
        assert_eq!(p.person_notes, vec!["SMS-only".to_owned()]);
    }

    #[test]
    fn escapes_the_entity() {
        let doc = document("sip:a\"&<@x", "+1");
        assert!(doc.contains("entity=\"sip:a&quot;&amp;&lt;@x\""), "{doc}");
        assert_eq!(parse(&doc).unwrap().entity, "sip:a\"&<@x");
    }

    #[test]
    fn user_document_says_open_or_closed() {
        assert_eq!(
            user_document("sip:erin@sms.example", true),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
             entity=\"sip:erin@sms.example\"><tuple id=\"im\"><status><basic>open</basic></status>\
             <contact>sip:erin@sms.example</contact></tuple></presence>"
        );
        let p = parse(&user_document("sip:erin@sms.example", false)).unwrap();
        assert_eq!(p.entity, "sip:erin@sms.example");
        assert!(format!("{:?}", p.tuples).contains("closed"), "{p:?}");
    }
}
