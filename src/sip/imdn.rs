//! IMDN (RFC 5438): the `message/imdn+xml` document and the CPIM-wrapped body
//! of the MESSAGE that carries a delivery notification to the sending user.

use super::cpim;
use crate::bridge::api::{DeliveryNotice, DispositionStatus};
use crate::xml::{self, Element, Rules, XmlError};

/// The IMDN XML namespace (not the CPIM header namespace).
pub(crate) const XML_NS: &str = "urn:ietf:params:xml:ns:imdn";

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Imdn {
    /// The `imdn.Message-ID` of the IM it is about.
    pub(crate) message_id: String,
    /// RFC 3339 date-time.
    pub(crate) datetime: String,
    pub(crate) recipient_uri: Option<String>,
    /// `delivery-notification`, `display-notification` or `processing-notification`.
    pub(crate) kind: String,
    /// The status element: `delivered`, `failed`, `forbidden`, `error`, ...
    pub(crate) status: String,
}

/// The `<delivery-notification>` status for a bridge notice. RFC 5438 §7.2.1.1
/// has four (`delivered`, `failed`, `forbidden`, `error`) and none for "not
/// known": a message whose status report never came is `failed` (not confirmed
/// delivered; the default), or `error`, the schema's only value that claims
/// neither outcome (it says the gateway could not determine the disposition),
/// when the sender is to be told neutrally.
pub(crate) fn delivery_status(n: &DeliveryNotice) -> &'static str {
    if n.displayed {
        "displayed"
    } else if n.delivered {
        "delivered"
    } else if n.neutral {
        "error"
    } else {
        "failed"
    }
}

impl Imdn {
    /// The delivery notification for a bridge notice ([`delivery_status`]).
    pub(crate) fn for_notice(n: &DeliveryNotice, datetime: &str, recipient_uri: &str) -> Self {
        let mut imdn = Self::delivery(
            &n.im_message_id,
            datetime,
            recipient_uri,
            delivery_status(n),
        );
        if n.displayed {
            imdn.kind = "display-notification".into();
        }
        imdn
    }

    /// What a recipient's client reports, for the bridge: displayed,
    /// delivered, or one of the failures (`failed`, `forbidden`, `error`).
    pub(crate) fn disposition(&self) -> Option<DispositionStatus> {
        match self.status.as_str() {
            "displayed" => Some(DispositionStatus::Displayed),
            "delivered" => Some(DispositionStatus::Delivered),
            "failed" | "forbidden" | "error" => Some(DispositionStatus::Failed),
            _ => None,
        }
    }

    /// A delivery notification with `status` (`delivered`, `failed`, ...).
    fn delivery(message_id: &str, datetime: &str, recipient_uri: &str, status: &str) -> Self {
        Self {
            message_id: message_id.to_owned(),
            datetime: datetime.to_owned(),
            recipient_uri: Some(recipient_uri.to_owned()),
            kind: "delivery-notification".into(),
            status: status.into(),
        }
    }

    /// The XML document (no line breaks; RFC 5438 §7.2.1.1 element order).
    pub(crate) fn to_xml(&self) -> String {
        Element::new("imdn")
            .attr("xmlns", XML_NS)
            .with(Element::text("message-id", &self.message_id))
            .with(Element::text("datetime", &self.datetime))
            .with_all(
                self.recipient_uri
                    .as_deref()
                    .map(|r| Element::text("recipient-uri", r)),
            )
            .with(
                Element::new(&self.kind)
                    .with(Element::new("status").with(Element::new(&self.status))),
            )
            .to_document()
    }

    /// Parses an IMDN document.
    pub(crate) fn from_xml(input: &str) -> Result<Self, XmlError> {
        let root = xml::parse(input.as_bytes(), &Rules::SIP)?;
        if !root.is(XML_NS, "imdn") {
            return Err(XmlError::Unexpected(format!("root {}", root.name)));
        }
        let text = |name: &str| {
            root.child_ns(XML_NS, name)
                .map(|e| e.text.trim().to_owned())
        };
        let message_id =
            text("message-id").ok_or_else(|| XmlError::Unexpected("no message-id".into()))?;
        let datetime =
            text("datetime").ok_or_else(|| XmlError::Unexpected("no datetime".into()))?;
        let notification = root
            .children
            .iter()
            .find(|c| c.ns.as_deref() == Some(XML_NS) && c.name.ends_with("-notification"))
            .ok_or_else(|| XmlError::Unexpected("no notification".into()))?;
        let status = notification
            .child_ns(XML_NS, "status")
            .and_then(|s| s.children.first())
            .ok_or_else(|| XmlError::Unexpected("no status".into()))?;
        Ok(Self {
            message_id,
            datetime,
            recipient_uri: text("recipient-uri"),
            kind: notification.name.clone(),
            status: status.name.clone(),
        })
    }
}

/// The `message/cpim` body of an IMDN MESSAGE (RFC 5438 §7.2.1.1): From the
/// subscriber, To the user, a fresh `imdn.Message-ID`, DateTime, then the XML
/// with `Content-Disposition: notification`.
pub(crate) fn notification_body(
    from: &str,
    to: &str,
    new_message_id: &str,
    now: &str,
    imdn: &Imdn,
) -> Vec<u8> {
    let xml = imdn.to_xml();
    let (from, to, len) = (
        format!("<{from}>"),
        format!("<{to}>"),
        xml.len().to_string(),
    );
    cpim::build(
        &[
            ("From", &from),
            ("To", &to),
            ("NS", "imdn <urn:ietf:params:imdn>"),
            ("imdn.Message-ID", new_message_id),
            ("DateTime", now),
        ],
        &[
            ("Content-Type", "message/imdn+xml"),
            ("Content-Disposition", "notification"),
            ("Content-Length", &len),
        ],
        xml.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>34jk324j</message-id>\
        <datetime>2026-05-01T12:00:00Z</datetime>\
        <recipient-uri>sip:+491715550001@sms.example</recipient-uri>\
        <delivery-notification><status><delivered/></status></delivery-notification></imdn>";

    #[test]
    fn builds_exact_xml() {
        let n = Imdn::delivery(
            "34jk324j",
            "2026-05-01T12:00:00Z",
            "sip:+491715550001@sms.example",
            "delivered",
        );
        assert_eq!(n.to_xml(), DELIVERED);
        let failed = Imdn::delivery("a<b", "t", "r", "failed").to_xml();
        assert!(
            failed.contains("<message-id>a&lt;b</message-id>")
                && failed.contains("<status><failed/></status>"),
            "{failed}"
        );
    }

    fn notice(delivered: bool, neutral: bool) -> DeliveryNotice {
        DeliveryNotice {
            displayed: false,
            recipient_user: None,
            to_user: "sip:alice@example.com".into(),
            front_end: crate::bridge::api::FrontEnd::Sip,
            im_message_id: "m-1".into(),
            recipient: "+4917".into(),
            delivered,
            neutral,
            at: crate::bridge::api::UnixTime(0),
            reason: None,
            cause: None,
        }
    }

    #[test]
    fn delivery_unknown_is_failed_or_the_neutral_error() {
        assert_eq!(delivery_status(&notice(true, false)), "delivered");
        assert_eq!(delivery_status(&notice(false, false)), "failed");
        assert_eq!(delivery_status(&notice(false, true)), "error");
        let x = Imdn::for_notice(&notice(false, true), "t", "sip:+4917@sms.example").to_xml();
        assert!(
            x.contains("<message-id>m-1</message-id>")
                && x.ends_with(
                    "<delivery-notification><status><error/></status></delivery-notification></imdn>"
                ),
            "{x}"
        );
    }

    #[test]
    fn parses_what_it_builds_and_rfc_shapes() {
        let n = Imdn::from_xml(DELIVERED).unwrap();
        assert_eq!(n.message_id, "34jk324j");
        assert_eq!(n.status, "delivered");
        assert_eq!(n.kind, "delivery-notification");
        let rfc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
            <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">\n  <message-id>34jk324j</message-id>\n\
            <datetime>2008-04-04T12:16:49-05:00</datetime>\n  <display-notification>\n\
            <status>\n <displayed/>\n </status>\n  </display-notification>\n</imdn>";
        let n = Imdn::from_xml(rfc).unwrap();
        assert_eq!(
            (n.kind.as_str(), n.status.as_str()),
            ("display-notification", "displayed")
        );
        assert!(Imdn::from_xml("<imdn xmlns=\"urn:other\"/>").is_err());
        assert_eq!(
            Imdn::from_xml("<!DOCTYPE imdn><imdn/>"),
            Err(XmlError::DocType)
        );
    }

    #[test]
    fn the_cpim_wrapper() {
        let n = Imdn::delivery(
            "orig-1",
            "2026-05-01T12:00:00Z",
            "sip:+4917@sms.example",
            "failed",
        );
        let body = notification_body(
            "sip:+4917@sms.example",
            "sip:alice@example.com",
            "new-1",
            "2026-05-01T12:00:05Z",
            &n,
        );
        let c = cpim::parse(&body).unwrap();
        assert_eq!(c.header("From"), Some("<sip:+4917@sms.example>"));
        assert_eq!(c.header("To"), Some("<sip:alice@example.com>"));
        assert_eq!(c.ns_header(cpim::IMDN_NS, "Message-ID"), Some("new-1"));
        assert_eq!(c.header("DateTime"), Some("2026-05-01T12:00:05Z"));
        assert_eq!(c.content_header("Content-Type"), Some("message/imdn+xml"));
        assert_eq!(
            c.content_header("Content-Disposition"),
            Some("notification")
        );
        let x = Imdn::from_xml(std::str::from_utf8(&c.body).unwrap()).unwrap();
        assert_eq!(
            (x.message_id.as_str(), x.status.as_str()),
            ("orig-1", "failed")
        );
    }
}
