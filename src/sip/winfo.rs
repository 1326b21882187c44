//! Watcher information for SIP presentities: the `presence.winfo` event
//! package (RFC 3857) and its `application/watcherinfo+xml` documents
//! (RFC 3858). A user subscribes to their own watchers; the first NOTIFY of
//! a subscription (and of each refresh) carries the full list, later ones a
//! `partial` document with the watcher whose standing changed. No I/O.

use super::body;
use crate::bridge::api::WatchDecision;
use crate::xml::Element;

/// The document type (RFC 3858 §4).
pub(crate) const MIME: &str = "application/watcherinfo+xml";
/// Its namespace.
pub(crate) const NS: &str = "urn:ietf:params:xml:ns:watcherinfo";
/// The event package.
pub(crate) const EVENT: &str = "presence.winfo";
/// At most this many `presence.winfo` subscriptions per user (a few
/// devices each watching their watchers).
pub(crate) const MAX_PER_USER: usize = 8;

/// Whether an Event header names `presence.winfo`.
pub(crate) fn is_winfo_event(event: &str) -> bool {
    let pkg = event.split(';').next().unwrap_or_default().trim();
    pkg.eq_ignore_ascii_case(EVENT)
}

/// Whether a SUBSCRIBE's Accept allows watcherinfo documents: no Accept
/// means the package's default (RFC 3857 §4.2), which is this one.
pub(crate) fn accepted(accept: &[&str]) -> bool {
    accept.is_empty()
        || accept.iter().any(|a| {
            body::ContentType::parse(a)
                .is_some_and(|c| [MIME, "application/*", "*/*"].contains(&c.mime.as_str()))
        })
}

/// The `status` and `event` attributes of a watcher standing so (RFC 3858
/// §4.3, the state machine of RFC 3857 §3.4): a polite-blocked watcher is
/// active to the presentity, who chose it; a blocked one was rejected.
fn status(d: WatchDecision) -> (&'static str, &'static str) {
    match d {
        WatchDecision::Allow | WatchDecision::PoliteBlock => ("active", "approved"),
        WatchDecision::Pending => ("pending", "subscribe"),
        WatchDecision::Block => ("terminated", "rejected"),
    }
}

/// A watcher's `id`, the same in every document of every subscription: a
/// hash of the address (FNV-1a, 64 bits, in hex).
fn watcher_id(watcher: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in watcher.to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("w{h:016x}")
}

/// The watcherinfo document about `resource`'s presence watchers: `full`
/// lists them all, else (`partial`) only those given.
pub(crate) fn document(
    resource: &str,
    version: u32,
    full: bool,
    watchers: &[(&str, WatchDecision)],
) -> String {
    let list = Element::new("watcher-list")
        .attr("resource", resource)
        .attr("package", "presence")
        .with_all(watchers.iter().map(|(w, d)| {
            let (status, event) = status(*d);
            Element::text("watcher", w)
                .attr("status", status)
                .attr("event", event)
                .attr("id", &watcher_id(w))
        }));
    Element::new("watcherinfo")
        .attr("xmlns", NS)
        .attr("version", &version.to_string())
        .attr("state", if full { "full" } else { "partial" })
        .with(list)
        .to_document()
}

/// The peer helpers of the integration tests (xmllint is a required peer).
#[cfg(test)]
#[allow(unreachable_pub)]
#[path = "../../tests/common/mod.rs"]
mod peers;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_partial_documents() {
        let doc = document(
            "sip:alice@sms.example",
            0,
            true,
            &[
                ("sip:harry@sms.example", WatchDecision::Pending),
                ("wv:erin@sms.example", WatchDecision::Allow),
                ("sip:jane@otherdomain.test", WatchDecision::Block),
            ],
        );
        assert_eq!(
            doc,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                 <watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"0\" state=\"full\">\
                 <watcher-list resource=\"sip:alice@sms.example\" package=\"presence\">\
                 <watcher status=\"pending\" event=\"subscribe\" id=\"{}\">sip:harry@sms.example</watcher>\
                 <watcher status=\"active\" event=\"approved\" id=\"{}\">wv:erin@sms.example</watcher>\
                 <watcher status=\"terminated\" event=\"rejected\" id=\"{}\">sip:jane@otherdomain.test</watcher>\
                 </watcher-list></watcherinfo>",
                watcher_id("sip:harry@sms.example"),
                watcher_id("wv:erin@sms.example"),
                watcher_id("sip:jane@otherdomain.test"),
            )
        );
        let partial = document("sip:a@b", 7, false, &[]);
        assert!(
            partial.contains("version=\"7\" state=\"partial\""),
            "{partial}"
        );
        assert!(partial.contains("<watcher-list resource=\"sip:a@b\" package=\"presence\"/>"));
    }

    #[test]
    fn ids_are_stable_and_case_blind() {
        assert_eq!(watcher_id("sip:Harry@x"), watcher_id("sip:harry@x"));
        assert_ne!(watcher_id("sip:harry@x"), watcher_id("sip:harry@y"));
        assert_eq!(watcher_id("").len(), 17);
    }

    #[test]
    fn event_and_accept() {
        assert!(is_winfo_event("presence.winfo"));
        assert!(is_winfo_event("Presence.Winfo ;id=3"));
        assert!(!is_winfo_event("presence"));
        assert!(accepted(&[]));
        assert!(accepted(&["application/watcherinfo+xml"]));
        assert!(!accepted(&["application/pidf+xml"]));
    }

    /// Every kind of document the front end sends validates against RFC
    /// 3858's schema (tests/fixtures/xsd/watcherinfo.xsd) by xmllint.
    #[test]
    fn documents_validate_against_the_rfc_schema() {
        let found = super::peers::command_succeeds("xmllint", &["--version"]);
        if !super::peers::peer_available("xmllint", "apt-get install libxml2-utils", found) {
            return;
        }
        let all = [
            ("sip:harry@sms.example", WatchDecision::Pending),
            ("wv:erin@sms.example", WatchDecision::Allow),
            ("sip:bob@sms.example", WatchDecision::PoliteBlock),
            ("sip:jane@otherdomain.test", WatchDecision::Block),
        ];
        let docs = [
            ("full", document("sip:alice@sms.example", 0, true, &all)),
            ("empty", document("sip:alice@sms.example", 0, true, &[])),
            (
                "partial",
                document("sip:alice@sms.example", 1, false, &all[..1]),
            ),
            (
                "rejected",
                document("sip:alice@sms.example", 9, false, &all[3..]),
            ),
            (
                "escaped",
                document(
                    "sip:a&b@x",
                    2,
                    false,
                    &[("sip:\"<>@x", WatchDecision::Allow)],
                ),
            ),
        ];
        let dir = std::env::temp_dir().join(format!("smsbridge-winfo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, doc) in docs {
            super::peers::assert_schema_valid(
                "watcherinfo.xsd",
                &doc,
                &dir.join(format!("{name}.xml")),
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
