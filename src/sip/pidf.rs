//! PIDF (RFC 3863, data model RFC 4479): the presence document of an SMS-only
//! subscriber, always `open`, with `contact tel:+…` and the note "SMS-only",
//! and a reader for tests and peers.

use crate::xml::Element;
#[cfg(test)]
use crate::xml::{self, Rules, XmlError};

/// The PIDF namespace.
pub(crate) const NS: &str = "urn:ietf:params:xml:ns:pidf";
/// The data-model namespace (`dm:person`).
pub(crate) const DM_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// The note every subscriber carries.
pub(crate) const NOTE: &str = "SMS-only";

/// The document for `entity` (`sip:+E164@domain`) reachable at `tel:<msisdn>`.
pub(crate) fn document(entity: &str, msisdn: &str) -> String {
    Element::new("presence")
        .attr("xmlns", NS)
        .attr("xmlns:dm", DM_NS)
        .attr("entity", entity)
        .with(
            Element::new("tuple")
                .attr("id", "sms")
                .with(basic("open"))
                .with(Element::text("contact", &format!("tel:{msisdn}")))
                .with(Element::text("note", NOTE)),
        )
        .with(
            Element::new("dm:person")
                .attr("id", "p")
                .with(Element::text("dm:note", NOTE)),
        )
        .to_document()
}

/// The presence document of a user of the bridge (an IMPS user) for SIP
/// watchers: `open` while they are logged in, else `closed`.
pub(crate) fn user_document(entity: &str, open: bool) -> String {
    Element::new("presence")
        .attr("xmlns", NS)
        .attr("entity", entity)
        .with(
            Element::new("tuple")
                .attr("id", "im")
                .with(basic(if open { "open" } else { "closed" }))
                .with(Element::text("contact", entity)),
        )
        .to_document()
}

fn basic(value: &str) -> Element {
    Element::new("status").with(Element::text("basic", value))
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
    let root = xml::parse(input.as_bytes(), &Rules::SIP)?;
    if !root.is(NS, "presence") {
        return Err(XmlError::Unexpected(format!("root {}", root.name)));
    }
    let entity = root
        .attribute("entity")
        .ok_or_else(|| XmlError::Unexpected("no entity".into()))?
        .to_owned();
    let tuples = root
        .children_ns(NS, "tuple")
        .map(|t| {
            let basic = t
                .child_ns(NS, "status")
                .and_then(|s| s.child_ns(NS, "basic"))
                .map(|b| b.text.trim().to_owned())
                .unwrap_or_default();
            let contact = t.child_ns(NS, "contact").map(|c| c.text.trim().to_owned());
            let notes = t.children_ns(NS, "note").map(|n| n.text.clone()).collect();
            (
                t.attribute("id").unwrap_or_default().to_owned(),
                basic,
                contact,
                notes,
            )
        })
        .collect();
    let person_notes = root
        .children_ns(DM_NS, "person")
        .flat_map(|p| p.children_ns(DM_NS, "note").map(|n| n.text.clone()))
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
