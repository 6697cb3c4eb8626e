//! Framing for court-xml: bytes → a small element tree, with the hardening rules of
//! docs/formats/court-xml.md enforced while streaming, before anything proportional to an attack is built. No DOCTYPE, no
//! entity other than the five predefined ones and character references, no processing
//! instruction but the declaration, depth ≤ 32, ≤ 10,000 elements, attribute values ≤ 4 KiB.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// How deep elements may nest (the root is depth 1).
pub const MAX_DEPTH: usize = 32;
/// How many elements a document may hold (the root included).
pub const MAX_ELEMENTS: usize = 10_000;
/// The longest attribute value, in bytes as received.
pub const MAX_ATTRIBUTE_BYTES: usize = 4096;

/// The text encodings the format allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
}

impl Encoding {
    pub fn label(&self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Latin1 => "ISO-8859-1",
        }
    }
}

/// Why the bytes are not a document this gateway reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// An encoding other than UTF-8 or ISO-8859-1 (HTTP 415).
    Encoding(String),
    /// Not well-formed, or a hardening rule broken (HTTP 400).
    Malformed(String),
}

/// One element: local name, namespace, attributes (by local name, or `prefix:name` for one with
/// a prefix), children, direct text (CDATA included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub namespace: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
    pub line: usize,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// The encoding the XML declaration names (no declaration means UTF-8).
pub fn declared_encoding(bytes: &[u8]) -> Result<Encoding, FrameError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(FrameError::Encoding(
            "the encoding UTF-16 is not accepted: only UTF-8 and ISO-8859-1".into(),
        ));
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    if !bytes.starts_with(b"<?xml") {
        return Ok(Encoding::Utf8);
    }
    let end = bytes
        .iter()
        .take(200)
        .position(|b| *b == b'>')
        .ok_or_else(|| FrameError::Malformed("the XML declaration is not closed".into()))?;
    let decl = String::from_utf8_lossy(&bytes[..end]);
    let Some(i) = decl.find("encoding") else {
        return Ok(Encoding::Utf8);
    };
    let rest = decl[i + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')
        .unwrap_or("")
        .trim_start();
    let quote = rest.chars().next().unwrap_or('"');
    let label: String = rest.chars().skip(1).take_while(|c| *c != quote).collect();
    match label.to_ascii_uppercase().as_str() {
        "UTF-8" | "UTF8" => Ok(Encoding::Utf8),
        "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "ISO_8859-1" => Ok(Encoding::Latin1),
        _ => Err(FrameError::Encoding(format!(
            "the encoding {label} is not accepted: only UTF-8 and ISO-8859-1"
        ))),
    }
}

/// True ISO-8859-1: each byte is the code point of the same number (not windows-1252).
pub fn latin1_to_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}

fn line_of(text: &str, pos: u64) -> usize {
    Lines::default().at(text, pos)
}

/// The line of each position of a document read from start to end: each call counts only the
/// newlines since the position before (counting from the start every time would make a
/// document's reading quadratic in its length).
#[derive(Default)]
struct Lines {
    pos: usize,
    newlines: usize,
}

impl Lines {
    fn at(&mut self, text: &str, pos: u64) -> usize {
        let pos = (pos as usize).min(text.len());
        if pos < self.pos {
            *self = Lines::default();
        }
        self.newlines += text.as_bytes()[self.pos..pos]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.pos = pos;
        self.newlines + 1
    }
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, FrameError> {
    let encoding = declared_encoding(bytes)?;
    let text = match encoding {
        Encoding::Utf8 => {
            std::str::from_utf8(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes))
                .map_err(|e| {
                    FrameError::Malformed(format!("not UTF-8 at byte {}", e.valid_up_to()))
                })?
                .to_string()
        }
        Encoding::Latin1 => latin1_to_string(bytes),
    };
    let mut reader = NsReader::from_str(&text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut lines = Lines::default();
    let malformed = |msg: String| FrameError::Malformed(msg);
    loop {
        let before = reader.buffer_position();
        let (ns, event) = reader.read_resolved_event().map_err(|e| {
            malformed(format!(
                "not well-formed XML (line {}): {e}",
                line_of(&text, before)
            ))
        })?;
        let ns = match ns {
            ResolveResult::Bound(n) => Some(n.as_ref().to_string()),
            _ => None,
        };
        let line = lines.at(&text, before);
        match event {
            Event::Decl(_) => {}
            Event::DocType(_) => {
                return Err(malformed(format!("a DOCTYPE is not allowed (line {line})")));
            }
            Event::PI(pi) => {
                let target = pi.target().to_string();
                return Err(malformed(format!(
                    "processing instruction `{target}` is not allowed (line {line})"
                )));
            }
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err(malformed(format!(
                    "content after the root element (line {line})"
                )));
            }
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let (e, empty) = match ev {
                    Event::Start(e) => (e, false),
                    Event::Empty(e) => (e, true),
                    _ => unreachable!("matched above"),
                };
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(malformed(format!(
                        "more than {MAX_ELEMENTS} elements (line {line})"
                    )));
                }
                let depth = stack.len() + 1;
                if depth > MAX_DEPTH {
                    let deepest = deepest_from(&mut reader, depth, empty);
                    return Err(malformed(format!(
                        "nesting depth ({deepest} > {MAX_DEPTH}) from line {line}"
                    )));
                }
                let name = e.local_name().as_ref().to_string();
                let mut attributes = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|err| {
                        malformed(format!("bad attribute in <{name}> (line {line}): {err}"))
                    })?;
                    let key = a.key;
                    if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
                        continue;
                    }
                    let raw_len = match encoding {
                        Encoding::Utf8 => a.value.len(),
                        Encoding::Latin1 => a.value.chars().count(),
                    };
                    if raw_len > MAX_ATTRIBUTE_BYTES {
                        return Err(malformed(format!(
                            "an attribute of <{name}> is over {MAX_ATTRIBUTE_BYTES} bytes (line {line})"
                        )));
                    }
                    let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|err| {
                        malformed(format!("an entity other than the predefined ones in <{name}> (line {line}): {err}"))
                    })?;
                    // the format defines no attribute in a namespace: a prefixed one keeps its
                    // prefix, so that it is never taken for the unprefixed one of that name
                    let key = match key.prefix() {
                        Some(_) => key.as_ref().to_string(),
                        None => key.local_name().as_ref().to_string(),
                    };
                    attributes.push((key, value.into_owned()));
                }
                let el = Element {
                    name,
                    namespace: ns,
                    attributes,
                    children: vec![],
                    text: String::new(),
                    line,
                };
                if empty {
                    close(&mut stack, &mut root, el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| malformed(format!("unexpected end tag (line {line})")))?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => {
                        return Err(malformed(format!(
                            "text outside the root element (line {line})"
                        )));
                    }
                }
            }
            Event::CData(c) => {
                let content = c.into_inner().into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&content);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().ok().flatten()
                } else {
                    match r.as_ref() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        _ => None,
                    }
                };
                let Some(c) = resolved else {
                    let name = r.as_ref().to_string();
                    return Err(malformed(format!(
                        "entity reference &{name}; is not allowed (line {line})"
                    )));
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("the document ends inside an element".into()));
    }
    root.ok_or_else(|| malformed("there is no root element".into()))
}

/// How deep the rest of the document goes, for the error message: counts tags only, keeps
/// nothing, and stops at the element limit, an error or the end.
fn deepest_from(reader: &mut NsReader<&[u8]>, depth: usize, empty: bool) -> usize {
    let (mut d, mut max, mut seen) = (if empty { depth - 1 } else { depth }, depth, 0usize);
    while seen < MAX_ELEMENTS {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                d += 1;
                seen += 1;
                max = max.max(d);
            }
            Ok(Event::Empty(_)) => {
                seen += 1;
                max = max.max(d + 1);
            }
            Ok(Event::End(_)) => d = d.saturating_sub(1),
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    max
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
    fn the_line_of_each_position_read_in_order_is_the_count_of_newlines_before_it_plus_one() {
        let text = "<a>\n<b>x</b>\n\n<c/>\r\n</a>\nafter";
        let naive = |pos: usize| {
            text.as_bytes()[..pos]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1
        };
        let mut lines = Lines::default();
        for pos in 0..=text.len() + 3 {
            assert_eq!(
                lines.at(text, pos as u64),
                naive(pos.min(text.len())),
                "at {pos}"
            );
        }
        // a position before the last one read is counted again from the start
        assert_eq!(lines.at(text, 4), 2);
        assert_eq!(lines.at(text, 0), 1);
        assert_eq!(line_of(text, text.len() as u64), 6);
    }
}
