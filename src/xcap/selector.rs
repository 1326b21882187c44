//! XCAP request URIs (RFC 4825 §6): which document (application usage,
//! user or global tree, document name) and which node in it (the node
//! selector after `~~`, with `xmlns(…)` prefix bindings from the query), and
//! finding, inserting and removing that node in an element tree.

use crate::sip::wire::percent_decode;
use crate::xml::Element;

/// The application usages served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auid {
    /// RFC 4826 resource lists: the user's contact lists.
    ResourceLists,
    /// RFC 5025 presence rules: the user's access policy.
    PresRules,
    /// RFC 4825 §12 server capabilities (global, read-only).
    Caps,
}

impl Auid {
    fn from_path(s: &str) -> Option<Self> {
        match s {
            "resource-lists" => Some(Self::ResourceLists),
            "pres-rules" | "org.openmobilealliance.pres-rules" => Some(Self::PresRules),
            "xcap-caps" => Some(Self::Caps),
            _ => None,
        }
    }
}

/// Which document a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `users/<xui>/index`: the user's document (XUI = SIP AOR).
    User(String),
    /// `global/index`.
    Global,
}

/// A qualified name as written in a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QName {
    /// The prefix, if any.
    pub(crate) prefix: Option<String>,
    /// The local name.
    pub(crate) local: String,
}

/// One location step (`name`, `*`, `name[2]`, `name[@a="v"]`,
/// `name[2][@a="v"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// The step as written (for `<no-parent>` ancestors and `<exists>` fields).
    pub(crate) raw: String,
    /// The element name; `None` for `*`.
    pub(crate) name: Option<QName>,
    /// 1-based position among the siblings the name matches.
    pub(crate) position: Option<usize>,
    /// An attribute the element must have, with its value.
    pub(crate) attr: Option<(QName, String)>,
}

/// What a selector ends with after its element steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Terminal {
    /// `@name`: an attribute of the selected element.
    Attribute(QName),
    /// `namespace::*`: the namespace bindings in scope.
    Namespaces,
}

/// A node selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeSelector {
    /// The element steps, the first naming the root.
    pub(crate) steps: Vec<Step>,
    /// An attribute or namespace selector at the end.
    pub(crate) terminal: Option<Terminal>,
    /// Prefix bindings from the query (`xmlns(p=urn:…)`).
    pub(crate) bindings: Vec<(String, String)>,
}

/// A parsed XCAP request URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XcapUri {
    /// The application usage.
    pub(crate) auid: Auid,
    /// The user or global tree.
    pub(crate) scope: Scope,
    /// The document URI's path as requested (before `/~~/`).
    pub(crate) document_path: String,
    /// The node selector, if any.
    pub(crate) node: Option<NodeSelector>,
}

/// Why a URI names nothing here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UriError {
    /// Not a document of the served application usages.
    #[error("no such document: {0}")]
    NoDocument(String),
    /// The node selector cannot be read.
    #[error("bad node selector: {0}")]
    BadSelector(String),
}

/// Longest node selector read, in bytes, and most steps in one.
const MAX_SELECTOR: usize = 2_048;
const MAX_STEPS: usize = 16;

/// The XCAP root of this server.
pub(crate) const ROOT: &str = "/xcap-root/";

/// Parses the path and query of a request under [`ROOT`].
pub(crate) fn parse_uri(path: &str, query: Option<&str>) -> Result<XcapUri, UriError> {
    let no_doc = || UriError::NoDocument(path.to_owned());
    let rest = path.strip_prefix(ROOT).ok_or_else(no_doc)?;
    let (doc, selector) = match rest.split_once("/~~/") {
        Some((d, s)) => (d, Some(s)),
        None => (rest.strip_suffix("/~~").unwrap_or(rest), None),
    };
    let segments: Vec<String> = doc
        .split('/')
        .map(percent_decode)
        .collect::<Option<_>>()
        .ok_or_else(no_doc)?;
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (auid, scope) = match seg.as_slice() {
        [auid, "users", xui, "index"] if !xui.is_empty() => (
            Auid::from_path(auid).ok_or_else(no_doc)?,
            Scope::User((*xui).to_owned()),
        ),
        [auid, "global", "index"] => (Auid::from_path(auid).ok_or_else(no_doc)?, Scope::Global),
        _ => return Err(no_doc()),
    };
    // Caps is global only; the per-user usages have no global document.
    if (auid == Auid::Caps) != (scope == Scope::Global) {
        return Err(no_doc());
    }
    let node = match selector {
        None => None,
        Some(s) => {
            let text = percent_decode(s)
                .ok_or_else(|| UriError::BadSelector("bad percent-encoding".into()))?;
            let bindings = query.map(parse_bindings).transpose()?.unwrap_or_default();
            Some(parse_selector(&text, bindings)?)
        }
    };
    Ok(XcapUri {
        auid,
        scope,
        document_path: format!("{ROOT}{doc}"),
        node,
    })
}

/// Reads `xmlns(p=uri)xmlns(q=uri)` (RFC 4825 §6.4) from a query.
fn parse_bindings(query: &str) -> Result<Vec<(String, String)>, UriError> {
    let q = percent_decode(query).ok_or_else(|| UriError::BadSelector("bad query".into()))?;
    let mut out = Vec::new();
    let mut rest = q.trim();
    while !rest.is_empty() {
        let inner = rest
            .strip_prefix("xmlns(")
            .ok_or_else(|| UriError::BadSelector(format!("unknown query part {rest}")))?;
        let (binding, after) = inner
            .split_once(')')
            .ok_or_else(|| UriError::BadSelector("unclosed xmlns(".into()))?;
        let (p, uri) = binding
            .split_once('=')
            .ok_or_else(|| UriError::BadSelector("xmlns() without =".into()))?;
        out.push((p.trim().to_owned(), uri.trim().to_owned()));
        rest = after.trim_start();
    }
    Ok(out)
}

fn parse_qname(s: &str) -> Result<QName, UriError> {
    let bad = || UriError::BadSelector(format!("bad name {s:?}"));
    let ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !n.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
    };
    match s.split_once(':') {
        Some((p, l)) if ok(p) && ok(l) => Ok(QName {
            prefix: Some(p.to_owned()),
            local: l.to_owned(),
        }),
        None if ok(s) => Ok(QName {
            prefix: None,
            local: s.to_owned(),
        }),
        _ => Err(bad()),
    }
}

/// Splits a selector at the `/` outside quotes.
fn split_steps(s: &str) -> Result<Vec<&str>, UriError> {
    let mut out = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '/') => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err(UriError::BadSelector("unclosed quote".into()));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_step(raw: &str) -> Result<Step, UriError> {
    let bad = |why: &str| UriError::BadSelector(format!("{why} in step {raw:?}"));
    let (name, mut preds) = match raw.find('[') {
        Some(i) => (&raw[..i], &raw[i..]),
        None => (raw, ""),
    };
    let name = if name == "*" {
        None
    } else {
        Some(parse_qname(name)?)
    };
    let mut position = None;
    let mut attr = None;
    while !preds.is_empty() {
        let body = preds.strip_prefix('[').ok_or_else(|| bad("text after ]"))?;
        if let Some(test) = body.strip_prefix('@') {
            if attr.is_some() {
                return Err(bad("two attribute tests"));
            }
            let eq = test
                .find('=')
                .ok_or_else(|| bad("attribute test without ="))?;
            let att = parse_qname(test[..eq].trim())?;
            let v = test[eq + 1..].trim_start();
            let q = v.chars().next().filter(|c| matches!(c, '"' | '\''));
            let q = q.ok_or_else(|| bad("unquoted attribute value"))?;
            let close = v[1..].find(q).ok_or_else(|| bad("unclosed quote"))? + 1;
            let value = unescape(&v[1..close]).ok_or_else(|| bad("bad entity"))?;
            let after = v[close + 1..].trim_start();
            preds = after.strip_prefix(']').ok_or_else(|| bad("missing ]"))?;
            attr = Some((att, value));
        } else {
            if position.is_some() || attr.is_some() {
                return Err(bad("position out of place"));
            }
            let close = body.find(']').ok_or_else(|| bad("missing ]"))?;
            let n: usize = body[..close]
                .trim()
                .parse()
                .map_err(|_| bad("bad position"))?;
            if n == 0 {
                return Err(bad("position 0"));
            }
            position = Some(n);
            preds = &body[close + 1..];
        }
    }
    Ok(Step {
        raw: raw.to_owned(),
        name,
        position,
        attr,
    })
}

/// Resolves the five predefined entities and character references of an
/// attribute value as written in a selector (XML `AttValue`).
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';')? + i;
        let ent = &rest[i + 1..end];
        let c = match ent {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let n = if let Some(h) = ent.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()?
                } else {
                    ent.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(n)?
            }
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Parses a percent-decoded node selector.
pub(crate) fn parse_selector(
    text: &str,
    bindings: Vec<(String, String)>,
) -> Result<NodeSelector, UriError> {
    if text.len() > MAX_SELECTOR {
        return Err(UriError::BadSelector("too long".into()));
    }
    let mut parts = split_steps(text)?;
    if parts.len() > MAX_STEPS + 1 {
        return Err(UriError::BadSelector("too many steps".into()));
    }
    let terminal = match parts.last() {
        Some(&"namespace::*") => Some(Terminal::Namespaces),
        Some(t) if t.starts_with('@') => Some(Terminal::Attribute(parse_qname(&t[1..])?)),
        _ => None,
    };
    if terminal.is_some() {
        parts.pop();
    }
    if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err(UriError::BadSelector("empty step".into()));
    }
    let steps = parts
        .into_iter()
        .map(parse_step)
        .collect::<Result<_, _>>()?;
    Ok(NodeSelector {
        steps,
        terminal,
        bindings,
    })
}

impl NodeSelector {
    /// The selector text of the first `n` steps (for error bodies).
    pub(crate) fn prefix_text(&self, n: usize) -> String {
        self.steps[..n.min(self.steps.len())]
            .iter()
            .map(|s| s.raw.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn name_matches(&self, q: &QName, ns: Option<&str>, local: &str) -> bool {
        if q.local != local {
            return false;
        }
        // A bound prefix must name the element's namespace; an unbound one
        // and no prefix match by local name (clients often leave them out).
        match q
            .prefix
            .as_deref()
            .and_then(|p| self.bindings.iter().find(|(b, _)| b == p))
        {
            Some((_, uri)) => ns.is_none_or(|n| n == uri),
            None => true,
        }
    }

    fn step_matches_name(&self, step: &Step, el: &Element) -> bool {
        step.name
            .as_ref()
            .is_none_or(|q| self.name_matches(q, el.ns.as_deref(), &el.name))
    }

    fn attr_matches(&self, step: &Step, el: &Element) -> bool {
        step.attr
            .as_ref()
            .is_none_or(|(a, v)| el.attribute(&a.local) == Some(v.as_str()))
    }

    /// The index among `parent.children` of the one child `step` selects.
    fn select_child(&self, parent: &Element, step: &Step) -> Option<usize> {
        let named: Vec<usize> = parent
            .children
            .iter()
            .enumerate()
            .filter(|(_, c)| self.step_matches_name(step, c))
            .map(|(i, _)| i)
            .collect();
        let candidates: Vec<usize> = match step.position {
            Some(p) => named.get(p - 1).copied().into_iter().collect(),
            None => named,
        };
        let mut hits = candidates
            .into_iter()
            .filter(|&i| self.attr_matches(step, &parent.children[i]));
        let first = hits.next()?;
        // A selector that names more than one element names none.
        hits.next().is_none().then_some(first)
    }

    fn root_matches(&self, root: &Element) -> bool {
        let s = &self.steps[0];
        self.step_matches_name(s, root)
            && s.position.is_none_or(|p| p == 1)
            && self.attr_matches(s, root)
    }

    /// The child indices leading to the element the first `n` steps select.
    pub(crate) fn locate_prefix(&self, root: &Element, n: usize) -> Option<Vec<usize>> {
        if n == 0 || !self.root_matches(root) {
            return None;
        }
        let mut path = Vec::new();
        let mut at = root;
        for step in &self.steps[1..n.min(self.steps.len())] {
            let i = self.select_child(at, step)?;
            path.push(i);
            at = &at.children[i];
        }
        Some(path)
    }

    /// The child indices of the element all steps select.
    pub(crate) fn locate(&self, root: &Element) -> Option<Vec<usize>> {
        self.locate_prefix(root, self.steps.len())
    }

    /// How many leading steps select something (the closest ancestor).
    pub(crate) fn matched_steps(&self, root: &Element) -> usize {
        (1..=self.steps.len())
            .rev()
            .find(|&n| self.locate_prefix(root, n).is_some())
            .unwrap_or(0)
    }

    /// Whether `el` could be what the last step names, once inserted.
    pub(crate) fn last_step_names(&self, el: &Element) -> bool {
        self.steps
            .last()
            .is_some_and(|s| self.step_matches_name(s, el) && self.attr_matches(s, el))
    }
}

/// The element at `path` below `root`.
pub(crate) fn at<'a>(root: &'a Element, path: &[usize]) -> &'a Element {
    path.iter().fold(root, |el, &i| &el.children[i])
}

/// The element at `path` below `root`, to change.
pub(crate) fn at_mut<'a>(root: &'a mut Element, path: &[usize]) -> &'a mut Element {
    path.iter().fold(root, |el, &i| &mut el.children[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(name: &str) -> Element {
        Element {
            ns: Some("urn:ietf:params:xml:ns:resource-lists".into()),
            ..Element::new(name)
        }
    }

    fn doc() -> Element {
        el("resource-lists")
            .with(
                el("list")
                    .attr("name", "friends")
                    .with(el("entry").attr("uri", "sip:bob@x"))
                    .with(el("entry").attr("uri", "sip:carol@x")),
            )
            .with(el("list").attr("name", "work"))
    }

    #[test]
    fn parses_user_documents_and_aliases() {
        let u = parse_uri(
            "/xcap-root/resource-lists/users/sip:alice@sms.test/index",
            None,
        )
        .unwrap();
        assert_eq!(u.auid, Auid::ResourceLists);
        assert_eq!(u.scope, Scope::User("sip:alice@sms.test".into()));
        assert_eq!(u.node, None);
        let u = parse_uri(
            "/xcap-root/org.openmobilealliance.pres-rules/users/sip%3Aalice%40sms.test/index",
            None,
        )
        .unwrap();
        assert_eq!(
            (u.auid, u.scope),
            (Auid::PresRules, Scope::User("sip:alice@sms.test".into()))
        );
        let u = parse_uri("/xcap-root/xcap-caps/global/index", None).unwrap();
        assert_eq!((u.auid, u.scope), (Auid::Caps, Scope::Global));
        for bad in [
            "/xcap-root/resource-lists/global/index",
            "/xcap-root/xcap-caps/users/sip:a@b/index",
            "/xcap-root/resource-lists/users/sip:a@b/other",
            "/xcap-root/nope/users/sip:a@b/index",
            "/xcap-root/resource-lists/users//index",
            "/other/resource-lists/users/sip:a@b/index",
        ] {
            assert!(
                matches!(parse_uri(bad, None), Err(UriError::NoDocument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_steps_predicates_and_terminals() {
        let u = parse_uri(
            "/xcap-root/resource-lists/users/sip:a@b/index/~~/resource-lists/list%5b@name=%22friends%22%5d/entry%5b2%5d%5b@uri='sip:a/b'%5d/@uri",
            Some("xmlns(rl=urn:ietf:params:xml:ns:resource-lists)"),
        )
        .unwrap();
        assert_eq!(
            u.document_path,
            "/xcap-root/resource-lists/users/sip:a@b/index"
        );
        let n = u.node.unwrap();
        assert_eq!(n.steps.len(), 3);
        assert_eq!(n.steps[1].attr.as_ref().unwrap().1, "friends");
        assert_eq!(n.steps[2].position, Some(2));
        assert_eq!(n.steps[2].attr.as_ref().unwrap().1, "sip:a/b");
        assert_eq!(
            n.terminal,
            Some(Terminal::Attribute(QName {
                prefix: None,
                local: "uri".into()
            }))
        );
        assert_eq!(
            n.bindings,
            vec![(
                "rl".to_owned(),
                "urn:ietf:params:xml:ns:resource-lists".to_owned()
            )]
        );
        let n = parse_selector("cp:ruleset/*[1]/namespace::*", vec![]).unwrap();
        assert_eq!(n.steps[1].name, None);
        assert_eq!(n.terminal, Some(Terminal::Namespaces));
        let n = parse_selector("a/b[@x=\"&quot;q&#65;\"]", vec![]).unwrap();
        assert_eq!(n.steps[1].attr.as_ref().unwrap().1, "\"qA");
    }

    #[test]
    fn refuses_bad_selectors() {
        for bad in [
            "",
            "a//b",
            "a/b[0]",
            "a/b[@x=unquoted]",
            "a/b[@x=\"open]",
            "a/b[@x=\"1\"][2]",
            "a/b[@x=\"1\"][@y=\"2\"]",
            "a/b[1]junk",
            "a/9b",
            "a/b[@x=\"&bogus;\"]",
        ] {
            assert!(parse_selector(bad, vec![]).is_err(), "{bad:?}");
        }
        let long = "a/".repeat(40) + "a";
        assert!(parse_selector(&long, vec![]).is_err());
    }

    #[test]
    fn selects_by_name_position_and_attribute() {
        let d = doc();
        let sel = |s: &str| parse_selector(s, vec![]).unwrap();
        assert_eq!(sel("resource-lists").locate(&d), Some(vec![]));
        assert_eq!(
            sel("resource-lists/list[@name=\"work\"]").locate(&d),
            Some(vec![1])
        );
        assert_eq!(
            sel("resource-lists/list[1]/entry[@uri=\"sip:carol@x\"]").locate(&d),
            Some(vec![0, 1])
        );
        assert_eq!(sel("resource-lists/*[2]").locate(&d), Some(vec![1]));
        assert_eq!(
            sel("resource-lists/list[1][@name=\"work\"]").locate(&d),
            None
        );
        // Two lists match `list`: no single element is selected.
        assert_eq!(sel("resource-lists/list").locate(&d), None);
        assert_eq!(sel("other").locate(&d), None);
        let missing = sel("resource-lists/list[@name=\"work\"]/entry[@uri=\"x\"]");
        assert_eq!(missing.matched_steps(&d), 2);
        assert_eq!(
            missing.prefix_text(2),
            "resource-lists/list[@name=\"work\"]"
        );
    }

    #[test]
    fn a_bound_prefix_must_name_the_namespace() {
        let d = doc();
        let right = parse_selector(
            "rl:resource-lists/rl:list[1]",
            vec![("rl".into(), "urn:ietf:params:xml:ns:resource-lists".into())],
        )
        .unwrap();
        assert_eq!(right.locate(&d), Some(vec![0]));
        let wrong = parse_selector(
            "rl:resource-lists/rl:list[1]",
            vec![("rl".into(), "urn:other".into())],
        )
        .unwrap();
        assert_eq!(wrong.locate(&d), None);
    }
}
