//! The XML under CSP: a strict, bounded tree by local name (CSP 1.1, 1.2 and
//! 1.3 differ only in namespace URIs), and its writer. Refused: DOCTYPE (so no
//! entity definitions, no external entities), any entity but the five
//! predefined ones and character references, more than [`MAX_DEPTH`] levels,
//! more than [`MAX_ELEMENTS`] elements, input over [`MAX_INPUT`] bytes, and
//! input that is not UTF-8.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Deepest nesting accepted (a CSP message is about 12 deep).
pub const MAX_DEPTH: usize = 24;
/// Most elements in one message.
pub const MAX_ELEMENTS: usize = 4_000;
/// Largest document, in bytes.
pub const MAX_INPUT: usize = 64 * 1024;

/// One element: local name, attributes (for writing namespaces), children, text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name.
    pub name: String,
    /// Attributes by local name (namespace declarations are dropped when parsing).
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

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The descendant along `path` (first match at each step).
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |el, name| el.child(name))
    }

    /// The trimmed text of the descendant along `path`, if present.
    pub fn text_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path).map(|e| e.text.trim())
    }

    /// Writes the element as XML.
    pub fn write(&self, out: &mut String) {
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
            // XML 1.0 cannot carry other C0 controls; drop them rather than
            // write a document the client cannot parse.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A DOCTYPE (entity definitions, external subsets) was present.
    #[error("XML with a DOCTYPE is not accepted")]
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
    /// Not well-formed.
    #[error("malformed XML: {0}")]
    Malformed(String),
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

/// Parses a document into its root element.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    if input.len() > MAX_INPUT {
        return Err(XmlError::TooBig);
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooBig);
                }
                if root.is_some() {
                    return Err(XmlError::Malformed("content after the root".into()));
                }
                let mut el = Element::new(e.local_name().as_ref());
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
            Event::DocType(_) => return Err(XmlError::DocType),
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

    #[test]
    fn parses_by_local_name_and_resolves_predefined_entities() {
        let el = parse(
            b"<?xml version=\"1.0\"?><a xmlns=\"urn:x\" xmlns:p=\"urn:p\" k=\"v&amp;w\">\
              <p:b>1 &lt; 2 &#x263A;</p:b><c/></a>",
        )
        .unwrap();
        assert_eq!(el.name, "a");
        assert_eq!(el.attrs, vec![("k".to_owned(), "v&w".to_owned())]);
        assert_eq!(el.text_at(&["b"]), Some("1 < 2 ☺"));
        assert!(el.child("c").is_some());
    }

    #[test]
    fn refuses_doctype_entities_depth_size_and_bad_utf8() {
        assert_eq!(
            parse(b"<!DOCTYPE a [<!ENTITY e \"boom\">]><a>&e;</a>"),
            Err(XmlError::DocType)
        );
        assert_eq!(
            parse(b"<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>"),
            Err(XmlError::DocType)
        );
        assert_eq!(parse(b"<a>&e;</a>"), Err(XmlError::Entity("e".into())));
        assert_eq!(parse(b"<a k=\"&e;\"/>"), Err(XmlError::Entity("e".into())));
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooBig));
        let many = format!("<a>{}</a>", "<b/>".repeat(MAX_ELEMENTS));
        assert_eq!(parse(many.as_bytes()), Err(XmlError::TooBig));
        assert_eq!(parse(&vec![b' '; MAX_INPUT + 1]), Err(XmlError::TooBig));
        assert_eq!(parse(b"<a>\xff\xfe</a>"), Err(XmlError::NotUtf8));
        assert!(matches!(parse(b"<a><b></a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b""), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b"<a/><b/>"), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn writes_escaped_and_round_trips() {
        let el = Element::new("a")
            .attr("xmlns", "urn:x")
            .with(Element::text("b", "x < y & \"z\"\u{1}"))
            .with(Element::new("c"));
        let mut out = String::new();
        el.write(&mut out);
        assert_eq!(
            out,
            "<a xmlns=\"urn:x\"><b>x &lt; y &amp; &quot;z&quot;</b><c/></a>"
        );
        let back = parse(out.as_bytes()).unwrap();
        assert_eq!(back.text_at(&["b"]), Some("x < y & \"z\""));
    }
}
