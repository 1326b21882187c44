//! The documents as views of the store: resource-lists (RFC 4826) from and
//! to the user's contact lists, pres-rules (RFC 5025 over RFC 4745 common
//! policy) from and to their access policy, and xcap-caps (RFC 4825 §12).
//! Trees here carry namespace URIs and local names; [`render`] gives them
//! prefixes for writing.

use crate::bridge::api::{ContactList, PresenceRule, SubHandling, Target, WatcherMatch};
use crate::xml::Element;

pub(crate) const RL_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
pub(crate) const CP_NS: &str = "urn:ietf:params:xml:ns:common-policy";
pub(crate) const PR_NS: &str = "urn:ietf:params:xml:ns:pres-rules";
pub(crate) const CAPS_NS: &str = "urn:ietf:params:xml:ns:xcap-caps";
pub(crate) const ERR_NS: &str = "urn:ietf:params:xml:ns:xcap-error";

/// Why a document (after a PUT or DELETE) cannot be taken, by RFC 4825 §11
/// error element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// `<schema-validation-error>`.
    Schema(String),
    /// `<uniqueness-failure>` with the field (a selector) that repeats.
    Uniqueness { field: String, phrase: String },
    /// `<constraint-failure>`: valid, but not something the bridge keeps.
    Constraint(String),
}

fn el(ns: &str, name: &str) -> Element {
    Element {
        ns: Some(ns.to_owned()),
        ..Element::new(name)
    }
}

fn text_el(ns: &str, name: &str, text: &str) -> Element {
    Element {
        ns: Some(ns.to_owned()),
        ..Element::text(name, text)
    }
}

/// An entry of a contact list as resource-lists shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `uri`.
    pub(crate) uri: String,
    /// `display-name`: the nickname.
    pub(crate) display_name: Option<String>,
}

/// A contact list as resource-lists shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct List {
    /// `name`.
    pub(crate) name: String,
    /// Its entries.
    pub(crate) entries: Vec<Entry>,
}

/// The entry URI of a list target: subscribers and users of the bridge as
/// SIP URIs of `domain` (what a SIP client subscribes to), foreign users by
/// their address.
pub(crate) fn target_uri(target: &Target, domain: &str) -> (String, Option<String>) {
    match target {
        Target::Subscriber { msisdn, name } => (format!("sip:{msisdn}@{domain}"), name.clone()),
        Target::Foreign { address, name } => (address.clone(), name.clone()),
        Target::User {
            user_part, name, ..
        } => (format!("sip:{user_part}@{domain}"), name.clone()),
    }
}

/// The bridge's lists as resource-lists sees them. Blocked contacts are
/// not list entries (as IMPS shows them in no NickList): a block is a rule.
pub(crate) fn lists_model(lists: &[ContactList], domain: &str) -> Vec<List> {
    lists
        .iter()
        .map(|l| List {
            name: l.name.clone(),
            entries: l
                .entries
                .iter()
                .filter(|e| !e.blocked)
                .map(|e| {
                    let (uri, display_name) = target_uri(&e.target, domain);
                    Entry { uri, display_name }
                })
                .collect(),
        })
        .collect()
}

/// The name to give the bridge for an entry URI (`list_add`, `list_remove`):
/// a number for `tel:+…` and `sip:+…@<domain>`, else the URI.
pub(crate) fn bridge_name(uri: &str, domain: &str) -> String {
    if let Some(n) = uri.strip_prefix("tel:") {
        return n.split(';').next().unwrap_or(n).to_owned();
    }
    if let Some(rest) = uri.strip_prefix("sip:")
        && let Some((user, host)) = rest.split(';').next().unwrap_or(rest).rsplit_once('@')
        && user.starts_with('+')
        && host.eq_ignore_ascii_case(domain)
    {
        return user.to_owned();
    }
    uri.to_owned()
}

/// The key two entry URIs are the same contact by.
pub(crate) fn entry_key(uri: &str, domain: &str) -> String {
    let name = bridge_name(uri, domain);
    if name.starts_with('+') {
        name
    } else {
        name.to_ascii_lowercase()
    }
}

/// The resource-lists document of `lists`.
pub(crate) fn lists_tree(lists: &[List]) -> Element {
    el(RL_NS, "resource-lists").with_all(lists.iter().map(|l| {
        el(RL_NS, "list")
            .attr("name", &l.name)
            .with_all(l.entries.iter().map(|e| {
                let entry = el(RL_NS, "entry").attr("uri", &e.uri);
                match &e.display_name {
                    Some(d) => entry.with(text_el(RL_NS, "display-name", d)),
                    None => entry,
                }
            }))
    }))
}

/// Whether `e` is `name` in namespace `ns` (or in none: fragments written
/// without declarations are read by local name).
fn is(e: &Element, ns: &str, name: &str) -> bool {
    e.name == name && e.ns.as_deref().is_none_or(|n| n == ns)
}

fn schema(why: impl Into<String>) -> Invalid {
    Invalid::Schema(why.into())
}

/// A URI as `xs:anyURI` and RFC 4826 §3.4.1 want it: a scheme, no spaces.
fn valid_uri(u: &str) -> bool {
    let Some((scheme, rest)) = u.split_once(':') else {
        return false;
    };
    !rest.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !u.chars().any(char::is_whitespace)
}

/// Reads a resource-lists document: schema rules of RFC 4826 §3.2, the
/// uniqueness constraints of §3.4.1, and what the bridge keeps (flat, named
/// lists of entries, each contact in one list, list names of 1 to 100
/// characters; `entry-ref`, `external` and nested lists refused as
/// constraint failures; a list's display name and elements of other
/// namespaces dropped).
pub(crate) fn read_lists(root: &Element, domain: &str) -> Result<Vec<List>, Invalid> {
    if !is(root, RL_NS, "resource-lists") {
        return Err(schema("the root must be resource-lists"));
    }
    if !root.text.trim().is_empty() {
        return Err(schema("text in resource-lists"));
    }
    let mut lists: Vec<List> = Vec::new();
    for l in &root.children {
        if !is(l, RL_NS, "list") {
            return Err(schema(format!("{} in resource-lists", l.name)));
        }
        let Some(name) = l.attribute("name") else {
            return Err(Invalid::Constraint("every list needs a name here".into()));
        };
        if name.trim().is_empty()
            || name.chars().count() > 100
            || name.chars().any(char::is_control)
        {
            return Err(Invalid::Constraint(
                "a list name is 1 to 100 characters, no control characters".into(),
            ));
        }
        if lists.iter().any(|x| x.name == name) {
            return Err(Invalid::Uniqueness {
                field: format!("resource-lists/list[@name=\"{name}\"]/@name"),
                phrase: "two lists with one name".into(),
            });
        }
        let mut list = List {
            name: name.to_owned(),
            entries: Vec::new(),
        };
        let mut seen_member = false;
        for c in &l.children {
            if c.ns.as_deref().is_some_and(|n| n != RL_NS) {
                continue;
            }
            match c.name.as_str() {
                "display-name" if !seen_member && list.entries.is_empty() => {}
                "entry" => {
                    seen_member = true;
                    list.entries.push(read_entry(c, &list, domain)?);
                }
                "list" | "entry-ref" | "external" => {
                    return Err(Invalid::Constraint(format!(
                        "{} is not kept: lists here hold entries only",
                        c.name
                    )));
                }
                other => return Err(schema(format!("{other} in list"))),
            }
        }
        for e in &list.entries {
            let key = entry_key(&e.uri, domain);
            if let Some(other) = lists
                .iter()
                .find(|o| o.entries.iter().any(|x| entry_key(&x.uri, domain) == key))
            {
                return Err(Invalid::Constraint(format!(
                    "{} is in list {:?} already: a contact is in one list here",
                    e.uri, other.name
                )));
            }
        }
        lists.push(list);
    }
    Ok(lists)
}

fn read_entry(c: &Element, list: &List, domain: &str) -> Result<Entry, Invalid> {
    let uri = c
        .attribute("uri")
        .ok_or_else(|| schema("entry without uri"))?;
    if !valid_uri(uri) {
        return Err(schema(format!("{uri:?} is not a URI")));
    }
    let key = entry_key(uri, domain);
    if list
        .entries
        .iter()
        .any(|e| entry_key(&e.uri, domain) == key)
    {
        return Err(Invalid::Uniqueness {
            field: format!(
                "resource-lists/list[@name=\"{}\"]/entry[@uri=\"{uri}\"]/@uri",
                list.name
            ),
            phrase: "two entries for one URI in a list".into(),
        });
    }
    let mut display_name = None;
    for d in &c.children {
        if d.ns.as_deref().is_some_and(|n| n != RL_NS) {
            continue;
        }
        if d.name != "display-name" || display_name.is_some() || !d.children.is_empty() {
            return Err(schema(format!("{} in entry", d.name)));
        }
        display_name = Some(d.text.trim().to_owned());
    }
    Ok(Entry {
        uri: uri.to_owned(),
        display_name: display_name.filter(|d| !d.is_empty()),
    })
}

fn handling_text(h: SubHandling) -> &'static str {
    match h {
        SubHandling::Block => "block",
        SubHandling::Confirm => "confirm",
        SubHandling::PoliteBlock => "polite-block",
        SubHandling::Allow => "allow",
    }
}

/// Ids of rules the bridge keeps for the second and later identities of one
/// XCAP rule (`friends`, `friends#2`, …): `#` is not allowed in an `xs:ID`,
/// so no client's id looks like one.
fn base_id(id: &str) -> &str {
    id.split_once('#').map_or(id, |(b, _)| b)
}

/// The pres-rules document of a policy. Consecutive rules the bridge keeps
/// for one XCAP rule (same base id and handling) are one rule with several
/// identities again.
pub(crate) fn rules_tree(rules: &[PresenceRule]) -> Element {
    let mut out: Vec<Element> = Vec::new();
    let mut last: Option<(&str, SubHandling)> = None;
    let mut used: Vec<String> = Vec::new();
    for r in rules {
        let id = base_id(&r.id);
        let condition = match &r.watcher {
            WatcherMatch::Identity(a) => Some(el(CP_NS, "one").attr("id", a)),
            WatcherMatch::Domain(d) => Some(el(CP_NS, "many").attr("domain", d)),
            WatcherMatch::Anyone => None,
        };
        let joins = last == Some((id, r.handling)) && condition.is_some();
        if joins
            && let Some(prev) = out.last_mut()
            && let Some(identity) = prev
                .children
                .first_mut()
                .and_then(|c| c.children.first_mut())
            && identity.name == "identity"
            && let Some(c) = condition.clone()
        {
            identity.children.push(c);
            continue;
        }
        let conditions = match condition {
            Some(c) => el(CP_NS, "conditions").with(el(CP_NS, "identity").with(c)),
            None => el(CP_NS, "conditions"),
        };
        // Rules the bridge made itself (a reactive answer) may have ids that
        // are no xs:ID, or repeat: the document gets one that is, and unique.
        let shown = if valid_id(id) && !used.iter().any(|u| u == id) {
            id.to_owned()
        } else {
            (out.len() + 1..)
                .map(|n| format!("rule-{n}"))
                .find(|c| !used.contains(c) && !rules.iter().any(|r| base_id(&r.id) == c))
                .unwrap_or_default()
        };
        used.push(shown.clone());
        out.push(
            el(CP_NS, "rule")
                .attr("id", &shown)
                .with(conditions)
                .with(el(CP_NS, "actions").with(text_el(
                    PR_NS,
                    "sub-handling",
                    handling_text(r.handling),
                )))
                .with(el(CP_NS, "transformations")),
        );
        last = Some((id, r.handling));
    }
    el(CP_NS, "ruleset").with_all(out)
}

/// An `xs:ID`/`xs:NCName`.
fn valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Reads a pres-rules document into the bridge's rules: each identity
/// (`one id`, `many domain`, `many` alone = anyone) of a rule becomes one
/// rule; no condition = anyone. Conditions the bridge cannot decide by
/// (`sphere`, `validity`, `except`, other namespaces) are constraint
/// failures; transformations are accepted and not kept (allowed watchers see
/// everything). A rule without `sub-handling` blocks (RFC 5025 §3.2.1).
pub(crate) fn read_rules(root: &Element) -> Result<Vec<PresenceRule>, Invalid> {
    if !is(root, CP_NS, "ruleset") {
        return Err(schema("the root must be common-policy ruleset"));
    }
    let mut ids: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for r in &root.children {
        if !is(r, CP_NS, "rule") {
            return Err(schema(format!("{} in ruleset", r.name)));
        }
        let id = r.attribute("id").ok_or_else(|| schema("rule without id"))?;
        if !valid_id(id) {
            return Err(schema(format!("rule id {id:?} is not an xs:ID")));
        }
        if ids.contains(&id) {
            return Err(schema(format!("rule id {id:?} twice")));
        }
        ids.push(id);
        let mut watchers = None;
        let mut handling = None;
        let mut order = 0;
        for part in &r.children {
            let rank = match part.name.as_str() {
                "conditions" if is(part, CP_NS, "conditions") => 1,
                "actions" if is(part, CP_NS, "actions") => 2,
                "transformations" if is(part, CP_NS, "transformations") => 3,
                other => return Err(schema(format!("{other} in rule"))),
            };
            if rank <= order {
                return Err(schema(format!("{} out of order", part.name)));
            }
            order = rank;
            match rank {
                1 => watchers = Some(read_conditions(part)?),
                2 => handling = read_actions(part)?,
                _ => {}
            }
        }
        let handling = handling.unwrap_or(SubHandling::Block);
        let watchers = watchers.unwrap_or_else(|| vec![WatcherMatch::Anyone]);
        for (n, watcher) in watchers.into_iter().enumerate() {
            out.push(PresenceRule {
                id: if n == 0 {
                    id.to_owned()
                } else {
                    format!("{id}#{}", n + 1)
                },
                watcher,
                handling,
            });
        }
    }
    Ok(out)
}

fn read_conditions(c: &Element) -> Result<Vec<WatcherMatch>, Invalid> {
    let mut found: Option<Vec<WatcherMatch>> = None;
    for cond in &c.children {
        match cond.name.as_str() {
            "identity" if is(cond, CP_NS, "identity") => {
                if found.is_some() {
                    return Err(Invalid::Constraint(
                        "one identity condition per rule here".into(),
                    ));
                }
                if cond.children.is_empty() {
                    return Err(schema("an empty identity"));
                }
                found = Some(
                    cond.children
                        .iter()
                        .map(read_identity)
                        .collect::<Result<_, _>>()?,
                );
            }
            "sphere" | "validity" if cond.ns.as_deref().is_none_or(|n| n == CP_NS) => {
                return Err(Invalid::Constraint(format!(
                    "{} conditions are not kept here",
                    cond.name
                )));
            }
            _ if cond.ns.as_deref().is_some_and(|n| n != CP_NS) => {
                return Err(Invalid::Constraint(format!(
                    "condition {} is not known here",
                    cond.name
                )));
            }
            other => return Err(schema(format!("{other} in conditions"))),
        }
    }
    Ok(found.unwrap_or_else(|| vec![WatcherMatch::Anyone]))
}

fn read_identity(i: &Element) -> Result<WatcherMatch, Invalid> {
    if i.ns.as_deref().is_some_and(|n| n != CP_NS) {
        return Err(Invalid::Constraint(format!(
            "identity {} is not known here",
            i.name
        )));
    }
    match i.name.as_str() {
        "one" => {
            let id = i.attribute("id").ok_or_else(|| schema("one without id"))?;
            if !valid_uri(id) {
                return Err(schema(format!("{id:?} is not a URI")));
            }
            Ok(WatcherMatch::Identity(id.to_owned()))
        }
        "many" => {
            if !i.children.is_empty() {
                return Err(Invalid::Constraint("except is not kept here".into()));
            }
            Ok(match i.attribute("domain") {
                Some(d) if !d.trim().is_empty() => WatcherMatch::Domain(d.trim().to_owned()),
                _ => WatcherMatch::Anyone,
            })
        }
        other => Err(schema(format!("{other} in identity"))),
    }
}

fn read_actions(a: &Element) -> Result<Option<SubHandling>, Invalid> {
    let mut handling = None;
    for act in &a.children {
        if act.ns.as_deref() == Some(CP_NS) {
            return Err(schema(format!("{} in actions", act.name)));
        }
        if act.name != "sub-handling" || act.ns.as_deref().is_some_and(|n| n != PR_NS) {
            // Other applications' actions are not this server's business.
            continue;
        }
        if handling.is_some() {
            return Err(schema("sub-handling twice"));
        }
        handling = Some(match act.text.trim() {
            "block" => SubHandling::Block,
            "confirm" => SubHandling::Confirm,
            "polite-block" => SubHandling::PoliteBlock,
            "allow" => SubHandling::Allow,
            other => return Err(schema(format!("sub-handling {other:?}"))),
        });
    }
    Ok(handling)
}

/// The xcap-caps document.
pub(crate) fn caps_tree() -> Element {
    el(CAPS_NS, "xcap-caps")
        .with(
            el(CAPS_NS, "auids").with_all(
                [
                    "xcap-caps",
                    "resource-lists",
                    "pres-rules",
                    "org.openmobilealliance.pres-rules",
                ]
                .map(|a| text_el(CAPS_NS, "auid", a)),
            ),
        )
        .with(el(CAPS_NS, "namespaces").with_all(
            [CAPS_NS, ERR_NS, RL_NS, CP_NS, PR_NS].map(|n| text_el(CAPS_NS, "namespace", n)),
        ))
}

/// The prefixes a document kind is written with (`""`: the default
/// namespace).
pub(crate) type Prefixes = &'static [(&'static str, &'static str)];

/// resource-lists: one default namespace.
pub(crate) const RL_PREFIXES: Prefixes = &[(RL_NS, "")];
/// pres-rules: common policy as `cp:`, pres-rules as the default.
pub(crate) const PR_PREFIXES: Prefixes = &[(PR_NS, ""), (CP_NS, "cp")];
/// xcap-caps.
pub(crate) const CAPS_PREFIXES: Prefixes = &[(CAPS_NS, "")];
/// xcap-error.
pub(crate) const ERR_PREFIXES: Prefixes = &[(ERR_NS, "")];

/// `tree` with prefixed names, ready for [`Element::write`]; `declare` puts
/// the namespace declarations on it (the root, or a fragment written alone).
pub(crate) fn render(tree: &Element, prefixes: Prefixes, declare: bool) -> Element {
    let prefix = tree
        .ns
        .as_deref()
        .and_then(|ns| prefixes.iter().find(|(n, _)| *n == ns))
        .map_or("", |(_, p)| p);
    let mut out = Element::new(&if prefix.is_empty() {
        tree.name.clone()
    } else {
        format!("{prefix}:{}", tree.name)
    });
    if declare {
        for (ns, p) in prefixes {
            let key = if p.is_empty() {
                "xmlns".to_owned()
            } else {
                format!("xmlns:{p}")
            };
            out = out.attr(&key, ns);
        }
    }
    out.attrs.extend(tree.attrs.iter().cloned());
    out.text.clone_from(&tree.text);
    out.children = tree
        .children
        .iter()
        .map(|c| render(c, prefixes, false))
        .collect();
    out
}

/// Whether two elements say the same (names, attributes, trimmed text,
/// children), whatever their namespaces were written as: the RFC 4825
/// §8.2.5 idempotency check.
pub(crate) fn same(a: &Element, b: &Element) -> bool {
    a.name == b.name
        && a.text.trim() == b.text.trim()
        && {
            let mut x = a.attrs.clone();
            let mut y = b.attrs.clone();
            x.sort();
            y.sort();
            x == y
        }
        && a.children.len() == b.children.len()
        && a.children.iter().zip(&b.children).all(|(x, y)| same(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::api::{FrontEnd, ListEntry};

    fn parse(s: &str) -> Element {
        crate::xml::parse(s.as_bytes(), &super::super::XCAP_RULES).unwrap()
    }

    #[test]
    fn lists_show_subscribers_users_and_foreign_contacts() {
        let lists = vec![ContactList {
            name: "friends".into(),
            entries: vec![
                ListEntry {
                    target: Target::Subscriber {
                        msisdn: "+491701234567".into(),
                        name: Some("Mum".into()),
                    },
                    blocked: false,
                },
                ListEntry {
                    target: Target::User {
                        user_part: "harry".into(),
                        front_end: FrontEnd::Imps,
                        name: None,
                    },
                    blocked: false,
                },
                ListEntry {
                    target: Target::Foreign {
                        address: "sip:jane@other.test".into(),
                        name: Some("Jane".into()),
                    },
                    blocked: false,
                },
            ],
        }];
        let model = lists_model(&lists, "sms.test");
        let doc = render(&lists_tree(&model), RL_PREFIXES, true).to_document();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
             <list name=\"friends\">\
             <entry uri=\"sip:+491701234567@sms.test\"><display-name>Mum</display-name></entry>\
             <entry uri=\"sip:harry@sms.test\"/>\
             <entry uri=\"sip:jane@other.test\"><display-name>Jane</display-name></entry>\
             </list></resource-lists>"
        );
        assert_eq!(read_lists(&parse(&doc), "sms.test").unwrap(), model);
    }

    #[test]
    fn numbers_are_one_contact_however_written() {
        assert_eq!(bridge_name("tel:+4917012", "sms.test"), "+4917012");
        assert_eq!(
            bridge_name("sip:+4917012@SMS.test;user=phone", "sms.test"),
            "+4917012"
        );
        assert_eq!(
            bridge_name("sip:+4917012@other.test", "sms.test"),
            "sip:+4917012@other.test"
        );
        assert_eq!(
            bridge_name("sip:harry@sms.test", "sms.test"),
            "sip:harry@sms.test"
        );
        let doc = parse(
            "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"a\">\
             <entry uri=\"tel:+4917012\"/><entry uri=\"sip:+4917012@sms.test\"/></list></resource-lists>",
        );
        assert!(matches!(
            read_lists(&doc, "sms.test"),
            Err(Invalid::Uniqueness { .. })
        ));
    }

    #[test]
    fn list_documents_break_the_rules_in_each_way() {
        let cases = [
            (
                "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"a\"/><list name=\"a\"/></resource-lists>",
                "uniqueness",
            ),
            (
                "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"a\"><entry/></list></resource-lists>",
                "schema",
            ),
            (
                "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"a\"><entry uri=\"no uri\"/></list></resource-lists>",
                "schema",
            ),
            (
                "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><entry uri=\"sip:a@b\"/></resource-lists>",
                "schema",
            ),
            (
                "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list name=\"a\"><list name=\"b\"/></list></resource-lists>",
                "constraint",
            ),
            (
                "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list/></resource-lists>",
                "constraint",
            ),
            (
                "<other xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>",
                "schema",
            ),
            ("<resource-lists xmlns=\"urn:x\"/>", "schema"),
        ];
        for (doc, want) in cases {
            let got = match read_lists(&parse(doc), "sms.test") {
                Err(Invalid::Schema(_)) => "schema",
                Err(Invalid::Uniqueness { .. }) => "uniqueness",
                Err(Invalid::Constraint(_)) => "constraint",
                Ok(_) => "ok",
            };
            assert_eq!(got, want, "{doc}");
        }
    }

    #[test]
    fn rules_round_trip_with_several_identities_in_one_rule() {
        let doc = parse(
            "<cp:ruleset xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
             xmlns=\"urn:ietf:params:xml:ns:pres-rules\">\
             <cp:rule id=\"friends\"><cp:conditions><cp:identity><cp:one id=\"sip:bob@sms.test\"/>\
             <cp:many domain=\"example.com\"/></cp:identity></cp:conditions>\
             <cp:actions><sub-handling>allow</sub-handling></cp:actions>\
             <cp:transformations><provide-note>true</provide-note></cp:transformations></cp:rule>\
             <cp:rule id=\"rest\"><cp:conditions/><cp:actions><sub-handling>polite-block</sub-handling></cp:actions></cp:rule>\
             <cp:rule id=\"silent\"/></cp:ruleset>",
        );
        let rules = read_rules(&doc).unwrap();
        let want = vec![
            PresenceRule {
                id: "friends".into(),
                watcher: WatcherMatch::Identity("sip:bob@sms.test".into()),
                handling: SubHandling::Allow,
            },
            PresenceRule {
                id: "friends#2".into(),
                watcher: WatcherMatch::Domain("example.com".into()),
                handling: SubHandling::Allow,
            },
            PresenceRule {
                id: "rest".into(),
                watcher: WatcherMatch::Anyone,
                handling: SubHandling::PoliteBlock,
            },
            PresenceRule {
                id: "silent".into(),
                watcher: WatcherMatch::Anyone,
                handling: SubHandling::Block,
            },
        ];
        assert_eq!(rules, want);
        let written = render(&rules_tree(&rules), PR_PREFIXES, true).to_document();
        assert_eq!(
            written,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <cp:ruleset xmlns=\"urn:ietf:params:xml:ns:pres-rules\" xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\">\
             <cp:rule id=\"friends\"><cp:conditions><cp:identity><cp:one id=\"sip:bob@sms.test\"/>\
             <cp:many domain=\"example.com\"/></cp:identity></cp:conditions>\
             <cp:actions><sub-handling>allow</sub-handling></cp:actions><cp:transformations/></cp:rule>\
             <cp:rule id=\"rest\"><cp:conditions/><cp:actions><sub-handling>polite-block</sub-handling></cp:actions>\
             <cp:transformations/></cp:rule>\
             <cp:rule id=\"silent\"><cp:conditions/><cp:actions><sub-handling>block</sub-handling></cp:actions>\
             <cp:transformations/></cp:rule></cp:ruleset>"
        );
        assert_eq!(read_rules(&parse(&written)).unwrap(), want);
    }

    #[test]
    fn rules_the_bridge_made_get_valid_unique_ids() {
        let rule = |id: &str, who: &str| PresenceRule {
            id: id.into(),
            watcher: WatcherMatch::Identity(who.into()),
            handling: SubHandling::Allow,
        };
        let tree = rules_tree(&[
            rule("wv:harry@sms.test", "wv:harry@sms.test"),
            rule("a", "sip:x@y"),
            rule("a", "sip:z@y"),
            rule("rule-1", "sip:w@y"),
        ]);
        let ids: Vec<&str> = tree
            .children
            .iter()
            .filter_map(|r| r.attribute("id"))
            .collect();
        // `a` twice in a row with one handling is one rule of two identities.
        assert_eq!(ids, ["rule-2", "a", "rule-1"]);
    }

    #[test]
    fn blocked_contacts_are_no_entries_and_a_contact_is_in_one_list() {
        let lists = vec![ContactList {
            name: "SMS".into(),
            entries: vec![ListEntry {
                target: Target::Subscriber {
                    msisdn: "+4917012".into(),
                    name: None,
                },
                blocked: true,
            }],
        }];
        assert!(lists_model(&lists, "sms.test")[0].entries.is_empty());
        let doc = parse(
            "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
             <list name=\"a\"><entry uri=\"tel:+4917012\"/></list>\
             <list name=\"b\"><entry uri=\"sip:+4917012@sms.test\"/></list></resource-lists>",
        );
        assert!(matches!(
            read_lists(&doc, "sms.test"),
            Err(Invalid::Constraint(_))
        ));
    }

    #[test]
    fn rule_documents_break_the_rules_in_each_way() {
        let wrap = |r: &str| {
            format!(
                "<cp:ruleset xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
                 xmlns=\"urn:ietf:params:xml:ns:pres-rules\">{r}</cp:ruleset>"
            )
        };
        let cases = [
            (
                "<cp:rule id=\"a\"><cp:actions><sub-handling>maybe</sub-handling></cp:actions></cp:rule>",
                "schema",
            ),
            ("<cp:rule id=\"a\"/><cp:rule id=\"a\"/>", "schema"),
            ("<cp:rule id=\"1a\"/>", "schema"),
            ("<cp:rule/>", "schema"),
            (
                "<cp:rule id=\"a\"><cp:actions/><cp:conditions/></cp:rule>",
                "schema",
            ),
            (
                "<cp:rule id=\"a\"><cp:conditions><cp:identity/></cp:conditions></cp:rule>",
                "schema",
            ),
            (
                "<cp:rule id=\"a\"><cp:conditions><cp:sphere value=\"work\"/></cp:conditions></cp:rule>",
                "constraint",
            ),
            (
                "<cp:rule id=\"a\"><cp:conditions><cp:identity><cp:many><cp:except id=\"sip:x@y\"/></cp:many></cp:identity></cp:conditions></cp:rule>",
                "constraint",
            ),
            (
                "<cp:rule id=\"a\"><cp:conditions><cp:identity><cp:one id=\"not a uri\"/></cp:identity></cp:conditions></cp:rule>",
                "schema",
            ),
        ];
        for (rules, want) in cases {
            let got = match read_rules(&parse(&wrap(rules))) {
                Err(Invalid::Schema(_)) => "schema",
                Err(Invalid::Uniqueness { .. }) => "uniqueness",
                Err(Invalid::Constraint(_)) => "constraint",
                Ok(_) => "ok",
            };
            assert_eq!(got, want, "{rules}");
        }
    }
}
