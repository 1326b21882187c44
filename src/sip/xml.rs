//! A small, strict XML tree for PIDF and IMDN: quick-xml's `NsReader` with
//! namespaces resolved, no DOCTYPE (so no entity definitions or expansion),
//! only the five predefined entities and character references, and bounded
//! depth and size. Writing goes through quick-xml's `Writer` in the callers.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

const MAX_DEPTH: usize = 32;
const MAX_ELEMENTS: usize = 2_000;
const MAX_INPUT: usize = 64 * 1024;

/// One element: namespace URI, local name, attributes by local name, children, text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    pub(crate) ns: Option<String>,
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
}

impl Element {
    /// The first child with this namespace and local name.
    pub(crate) fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child with this namespace and local name.
    #[cfg(test)]
    pub(crate) fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    pub(crate) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    #[cfg(test)]
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why an XML document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum XmlError {
    #[error("XML with a DOCTYPE is not accepted")]
    DocType,
    #[error("unknown entity &{0};")]
    Entity(String),
    #[error("XML too large or too deep")]
    TooBig,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("unexpected XML: {0}")]
    Unexpected(String),
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

/// Parses a document into its root element.
pub(crate) fn parse(input: &str) -> Result<Element, XmlError> {
    if input.len() > MAX_INPUT {
        return Err(XmlError::TooBig);
    }
    let mut reader = NsReader::from_str(input);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(malformed)?;
        let ns = match ns {
            ResolveResult::Bound(n) => Some(n.as_ref().to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(XmlError::Malformed(format!("unknown prefix {}", p)));
            }
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
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
    fn namespaces_entities_and_refusals() {
        let el = parse(
            "<?xml version=\"1.0\"?><a xmlns=\"urn:x\" xmlns:p=\"urn:p\" k=\"v&amp;w\">\
             <p:b>1 &lt; 2 &#x263A;</p:b><c/></a>",
        )
        .unwrap();
        assert_eq!(el.ns.as_deref(), Some("urn:x"));
        assert_eq!(el.attr("k"), Some("v&w"));
        assert_eq!(el.child("urn:p", "b").unwrap().text, "1 < 2 ☺");
        assert!(el.child("urn:x", "c").is_some());
        assert_eq!(
            parse("<!DOCTYPE a [<!ENTITY e \"boom\">]><a>&e;</a>"),
            Err(XmlError::DocType)
        );
        assert_eq!(parse("<a>&e;</a>"), Err(XmlError::Entity("e".into())));
        assert!(matches!(parse("<a><b></a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse("<p:a/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(""), Err(XmlError::Malformed(_))));
        assert!(matches!(parse("<a/><b/>"), Err(XmlError::Malformed(_))));
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert_eq!(parse(&deep), Err(XmlError::TooBig));
    }
}
