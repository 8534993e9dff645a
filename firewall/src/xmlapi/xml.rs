//! A small element tree over quick-xml: the XML API's answers are short
//! (a page of registered IPs at most), so a tree keeps the readers simple
//! while quick-xml does the real work (entities, CDATA, quoting).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Deepest nesting accepted: the API's answers are a handful of levels
/// deep; anything deeper is not an answer from a firewall.
const MAX_DEPTH: usize = 64;

/// One element: its name, attributes, text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    /// The element's own text (CDATA and entities resolved), trimmed.
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at `path` (child names, one per level).
    pub fn path(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, name| e.child(name))
    }

    /// All text below this element, depth first, joined by spaces.
    pub fn all_text(&self) -> String {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Element, out: &mut Vec<&'a str>) {
            if !e.text.is_empty() {
                out.push(&e.text);
            }
            for c in &e.children {
                walk(c, out);
            }
        }
        walk(self, &mut out);
        out.join(" ")
    }
}

fn start(e: &BytesStart<'_>) -> Result<Element, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| format!("attribute of <{name}>: {err}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| format!("attribute {key} of <{name}>: {err}"))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

/// Parses a document into its root element. Anything that is not one
/// well-formed element (an HTML page, a truncated answer) is an error
/// naming what went wrong.
pub fn parse(input: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(input);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err("content after the root element".into());
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} elements"));
                }
                stack.push(start(&e)?);
            }
            Event::Empty(e) => {
                let el = start(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err("content after the root element".into()),
                }
            }
            Event::End(_) => {
                let Some(mut done) = stack.pop() else {
                    return Err("closing tag without an opening one".into());
                };
                done.text = done.text.trim().to_string();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| format!("text: {e}"))?;
                if stack.is_empty() && !text.trim().is_empty() {
                    return Err("text outside the root element".into());
                }
                push_text(&mut stack, &text);
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| format!("CDATA: {e}"))?;
                push_text(&mut stack, &text);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = r.decode().map_err(|e| format!("entity: {e}"))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .map(str::to_string)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                    }
                };
                push_text(&mut stack, &resolved);
            }
            Event::DocType(_) => {
                return Err("a document type declaration (an HTML page?)".into());
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(format!(
            "truncated: <{}> is never closed",
            stack[stack.len() - 1].name
        ));
    }
    root.ok_or_else(|| "no element at all".to_string())
}

/// Escapes text for an XML attribute or element body.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_cdata_and_attributes_are_resolved() {
        let e = parse(r#"<?xml version="1.0"?><r a="x &amp; &quot;y&quot;"><m>a &lt;b&gt; &#65;<![CDATA[<c>]]></m><e/></r>"#)
            .expect("parses");
        assert_eq!(e.attr("a"), Some(r#"x & "y""#));
        assert_eq!(e.child("m").map(|m| m.text.as_str()), Some("a <b> A<c>"));
        assert!(e.child("e").is_some());
    }

    #[test]
    fn html_and_truncated_documents_are_errors() {
        assert!(parse("<!DOCTYPE html><html><body>Login</body></html>").is_err());
        assert!(parse("<response status=\"success\"><result>").is_err());
        assert!(parse("").is_err());
        assert!(parse("garbage").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse(&"<a>".repeat(100)).is_err());
    }

    #[test]
    fn escaping_round_trips() {
        let nasty = r#"a<b>&"c'"#;
        let doc = format!("<t v=\"{}\">{}</t>", escape(nasty), escape(nasty));
        let e = parse(&doc).expect("parses");
        assert_eq!(e.attr("v"), Some(nasty));
        assert_eq!(e.text, nasty);
    }
}
