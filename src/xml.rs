//! The XML under SIP bodies (PIDF, IMDN) and OMA IMPS CSP: one strict,
//! bounded reader into a small element tree, and the writer for that tree.
//! Refused on reading: any DOCTYPE with an internal subset (so no entity
//! definitions), and for SIP bodies any DOCTYPE at all; any entity but the
//! five predefined ones and character references; input over `MAX_INPUT`
//! bytes, input that is not UTF-8, and documents deeper or larger than the
//! caller's `Rules`. An external DTD is never fetched. It knows nothing of
//! what the documents mean; `sip/` and `imps/` read and build their own.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// Largest document read, in bytes (also the IMPS HTTP body limit).
pub(crate) const MAX_INPUT: usize = 64 * 1024;

/// What a reader accepts beyond well-formed XML; each protocol states its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Deepest nesting accepted.
    pub(crate) max_depth: usize,
    /// Most elements in one document.
    pub(crate) max_elements: usize,
    /// Refuse an element whose prefix has no declaration; when `false` it is
    /// read by its local name with no namespace.
    pub(crate) declared_prefixes_only: bool,
    /// Read, and ignore, a DOCTYPE that names only an external identifier
    /// (no internal subset, so no entity declarations); when `false` any
    /// DOCTYPE is refused.
    pub(crate) external_doctype: bool,
}

impl Rules {
    /// PIDF and IMDN bodies: read with their namespaces, so an undeclared
    /// prefix is an error.
    pub(crate) const SIP: Rules = Rules {
        max_depth: 32,
        max_elements: 2_000,
        declared_prefixes_only: true,
        external_doctype: false,
    };
    /// CSP messages are read by local name (CSP 1.1, 1.2 and 1.3 differ only
    /// in namespace URIs), so a client's undeclared prefix is let through. A
    /// CSP message is about 12 deep. Spec-style CSP documents carry
    /// `<!DOCTYPE WV-CSP-Message PUBLIC "-//OMA//DTD WV-CSP 1.2//EN" "…">`.
    pub(crate) const CSP: Rules = Rules {
        max_depth: 24,
        max_elements: 4_000,
        declared_prefixes_only: false,
        external_doctype: true,
    };
}

/// One element. Read: namespace URI, local name, attributes by local name
/// (namespace declarations dropped), children, text. Written: `name` and the
/// attributes as given (a prefix and its `xmlns:` attribute are the
/// builder's); `ns` is not written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI, when read from a document that declares one.
    pub ns: Option<String>,
    /// Local name when read; the name to write, prefix included, when built.
    pub name: String,
    /// Attributes in order.
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// The text directly inside, entities resolved.
    pub text: String,
}

impl Element {
    /// An empty element.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// An element holding text.
    pub fn text(name: &str, text: &str) -> Self {
        Self {
            name: name.to_owned(),
            text: text.to_owned(),
            ..Self::default()
        }
    }

    /// Adds a child (builder style).
    #[must_use]
    pub fn with(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// Adds children (builder style).
    #[must_use]
    pub fn with_all(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.children.extend(children);
        self
    }

    /// Adds an attribute (builder style).
    #[must_use]
    pub fn attr(mut self, name: &str, value: &str) -> Self {
        self.attrs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The value of the attribute with this local name.
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child with this local name, whatever its namespace.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name, whatever its namespace.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The descendant along `path` of local names (first match at each step).
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |el, name| el.child(name))
    }

    /// The trimmed text of the descendant along `path`, if present.
    pub fn text_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path).map(|e| e.text.trim())
    }

    /// Whether this element has namespace `ns` and local name `name`.
    pub(crate) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    /// The first child with this namespace and local name.
    pub(crate) fn child_ns(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child with this namespace and local name.
    pub(crate) fn children_ns<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The element as a document: the UTF-8 XML declaration, then the element.
    pub(crate) fn to_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        self.write(&mut out);
        out
    }

    /// Writes the element as XML (no declaration). An element with neither
    /// text nor children is written empty (`<a/>`).
    pub(crate) fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_into(v, out);
            out.push('"');
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        escape_into(&self.text, out);
        for c in &self.children {
            c.write(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A raw CR would be read back as LF (XML end-of-line handling).
            '\r' => out.push_str("&#13;"),
            // XML 1.0 cannot carry other C0 controls; drop them rather than
            // write a document the peer cannot parse.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n') => {}
            c => out.push(c),
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A DOCTYPE with an internal subset (entity definitions), one out of
    /// place, or any DOCTYPE where the rules refuse them.
    #[error("XML with this DOCTYPE is not accepted")]
    DocType,
    /// An entity other than the predefined ones.
    #[error("unknown entity &{0};")]
    Entity(String),
    /// Over a size, depth or count limit.
    #[error("XML too large or too deep")]
    TooBig,
    /// Not UTF-8.
    #[error("the body is not UTF-8")]
    NotUtf8,
    /// Not well-formed (or, under `Rules::SIP`, an undeclared prefix).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// Well-formed, but not the document the reader expected.
    #[error("unexpected XML: {0}")]
    Unexpected(String),
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

/// Parses a document into its root element under `rules`.
pub(crate) fn parse(input: &[u8], rules: &Rules) -> Result<Element, XmlError> {
    if input.len() > MAX_INPUT {
        return Err(XmlError::TooBig);
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut doctype_seen = false;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(malformed)?;
        let ns = match ns {
            ResolveResult::Bound(n) => Some(n.as_ref().to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) if rules.declared_prefixes_only => {
                return Err(XmlError::Malformed(format!("undeclared prefix {p}")));
            }
            ResolveResult::Unknown(_) => None,
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > rules.max_elements || stack.len() >= rules.max_depth {
                    return Err(XmlError::TooBig);
                }
                if root.is_some() {
                    return Err(XmlError::Malformed("content after the root".into()));
                }
                let mut el = Element {
                    ns,
                    name: e.local_name().as_ref().to_owned(),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(malformed)?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| match e {
                            quick_xml::Error::Escape(
                                quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                            ) => XmlError::Entity(name),
                            other => malformed(other),
                        })?;
                    el.attrs
                        .push((a.key.local_name().as_ref().to_owned(), value.into_owned()));
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(XmlError::Malformed("text outside the root".into())),
                }
            }
            Event::CData(c) => {
                let content = c.xml10_content();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&content);
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c,
                    None => match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(XmlError::Entity(other.to_owned())),
                    },
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::DocType(d) => {
                let internal_subset = d.as_ref().contains('[');
                let before_root = root.is_none() && stack.is_empty() && count == 0;
                if !rules.external_doctype || internal_subset || !before_root || doctype_seen {
                    return Err(XmlError::DocType);
                }
                doctype_seen = true;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("unclosed element".into()));
    }
    root.ok_or_else(|| XmlError::Malformed("no root element".into()))
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [Rules; 2] = [Rules::SIP, Rules::CSP];

    #[test]
    fn reads_namespaces_local_names_and_predefined_entities() {
        let doc = b"<?xml version=\"1.0\"?><a xmlns=\"urn:x\" xmlns:p=\"urn:p\" k=\"v&amp;w\">\
              <p:b>1 &lt; 2 &#x263A;</p:b><c/><![CDATA[<raw>]]></a>";
        for rules in BOTH {
            let el = parse(doc, &rules).unwrap();
            assert_eq!((el.ns.as_deref(), el.name.as_str()), (Some("urn:x"), "a"));
            assert_eq!(el.attrs, vec![("k".to_owned(), "v&w".to_owned())]);
            assert_eq!(el.attribute("k"), Some("v&w"));
            assert_eq!(el.text, "<raw>");
            assert_eq!(el.text_at(&["b"]), Some("1 < 2 ☺"));
            assert_eq!(el.child_ns("urn:p", "b").unwrap().text, "1 < 2 ☺");
            assert!(el.child_ns("urn:x", "b").is_none());
            assert!(el.child_ns("urn:x", "c").is_some());
            assert!(el.child("c").is_some());
        }
    }

    #[test]
    fn an_undeclared_prefix_is_refused_for_sip_and_read_by_local_name_for_csp() {
        assert!(matches!(
            parse(b"<p:a/>", &Rules::SIP),
            Err(XmlError::Malformed(_))
        ));
        let el = parse(b"<p:a><p:b>x</p:b></p:a>", &Rules::CSP).unwrap();
        assert_eq!((el.ns.as_deref(), el.name.as_str()), (None, "a"));
        assert_eq!(el.text_at(&["b"]), Some("x"));
    }

    #[test]
    fn an_external_doctype_is_ignored_for_csp_and_refused_for_sip() {
        let spec = b"<?xml version=\"1.0\"?>\n<!DOCTYPE WV-CSP-Message PUBLIC \
            \"-//OMA//DTD WV-CSP 1.2//EN\" \"http://www.openmobilealliance.org/DTD/WV-CSP.DTD\">\n\
            <WV-CSP-Message><Session/></WV-CSP-Message>";
        let el = parse(spec, &Rules::CSP).unwrap();
        assert_eq!((el.name.as_str(), el.children.len()), ("WV-CSP-Message", 1));
        // Never fetched: a local file is only a name.
        assert!(
            parse(
                b"<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>",
                &Rules::CSP
            )
            .is_ok()
        );
        assert_eq!(parse(spec, &Rules::SIP), Err(XmlError::DocType));
        // Twice, or after the root, is not a prolog.
        assert_eq!(
            parse(
                b"<!DOCTYPE a SYSTEM \"x\"><!DOCTYPE a SYSTEM \"x\"><a/>",
                &Rules::CSP
            ),
            Err(XmlError::DocType)
        );
        assert!(parse(b"<a/><!DOCTYPE a SYSTEM \"x\">", &Rules::CSP).is_err());
    }

    #[test]
    fn refuses_doctype_and_entities() {
        for rules in BOTH {
            assert_eq!(
                parse(b"<!DOCTYPE a [<!ENTITY e \"boom\">]><a>&e;</a>", &rules),
                Err(XmlError::DocType)
            );
            assert_eq!(
                parse(b"<!DOCTYPE a PUBLIC \"p\" \"s\" []><a/>", &rules),
                Err(XmlError::DocType),
                "an empty internal subset too"
            );
            // The billion laughs need a DOCTYPE to define their entities.
            let lol = b"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
                <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\
                <lolz>&lol2;</lolz>";
            assert_eq!(parse(lol, &rules), Err(XmlError::DocType));
            assert_eq!(
                parse(b"<a>&e;</a>", &rules),
                Err(XmlError::Entity("e".into()))
            );
            assert_eq!(
                parse(b"<a k=\"&e;\"/>", &rules),
                Err(XmlError::Entity("e".into()))
            );
        }
    }

    #[test]
    fn refuses_depth_count_and_size_over_the_limits() {
        for rules in BOTH {
            let nest = |n: usize| "<a>".repeat(n) + &"</a>".repeat(n);
            assert!(parse(nest(rules.max_depth).as_bytes(), &rules).is_ok());
            assert_eq!(
                parse(nest(rules.max_depth + 1).as_bytes(), &rules),
                Err(XmlError::TooBig)
            );
            let flat = |n: usize| format!("<a>{}</a>", "<b/>".repeat(n));
            assert!(parse(flat(rules.max_elements - 1).as_bytes(), &rules).is_ok());
            assert_eq!(
                parse(flat(rules.max_elements).as_bytes(), &rules),
                Err(XmlError::TooBig)
            );
            assert_eq!(
                parse(&vec![b' '; MAX_INPUT + 1], &rules),
                Err(XmlError::TooBig)
            );
            // A hostile nesting far past the limit stops at the limit.
            assert_eq!(
                parse(b"<a>".repeat(MAX_INPUT / 3).as_slice(), &rules),
                Err(XmlError::TooBig)
            );
        }
    }

    #[test]
    fn refuses_bad_utf8_and_malformed_documents() {
        for rules in BOTH {
            assert_eq!(parse(b"<a>\xff\xfe</a>", &rules), Err(XmlError::NotUtf8));
            assert_eq!(parse(b"<a k=\"\xc3\"/>", &rules), Err(XmlError::NotUtf8));
            for bad in [
                &b"<a><b></a>"[..],
                b"",
                b"   ",
                b"<a/><b/>",
                b"<a/>text",
                b"</a>",
                b"<a",
                b"<a k=v/>",
            ] {
                assert!(
                    matches!(parse(bad, &rules), Err(XmlError::Malformed(_))),
                    "{:?}",
                    String::from_utf8_lossy(bad)
                );
            }
        }
    }

    #[test]
    fn writes_escaped_and_round_trips() {
        let el = Element::new("a")
            .attr("xmlns", "urn:x")
            .attr("k", "<\"'&\r>")
            .with(Element::text("b", "x < y & \"z\"\u{1}\r\n"))
            .with(Element::new("c"));
        let doc = el.to_document();
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a xmlns=\"urn:x\" \
             k=\"&lt;&quot;&apos;&amp;&#13;&gt;\">\
             <b>x &lt; y &amp; &quot;z&quot;&#13;\n</b><c/></a>"
        );
        for rules in BOTH {
            let back = parse(doc.as_bytes(), &rules).unwrap();
            assert_eq!(back.attribute("k"), Some("<\"'&\r>"));
            assert_eq!(back.child("b").unwrap().text, "x < y & \"z\"\r\n");
        }
    }
}
