//! The canonical format itself: JSON checked against the submission or stored schema and read
//! into the types. Like every adapter it leaves the semantic rules to the caller
//! (`jxg_schema::validate::semantic`, which the gateway runs after every decode).

use jxg_schema::schema::{self, Form};
use jxg_schema::{Document, Message, MessageType, Version, Violations, Withdrawal};
use serde_json::Value;

use crate::{Adapter, Context, DecodeError, EncodeError, Rejection};

/// Canonical v1 (`canonical` in configuration): what a v1 recipient is given. It reads every
/// version, and writes v1.
#[derive(Debug)]
pub struct Canonical;

/// Canonical v2 (`canonical-v2`): v1 with corrections and withdrawals.
#[derive(Debug)]
pub struct CanonicalV2;

impl Canonical {
    /// Decodes either form (told apart by `id`) of a message of either version, reporting every
    /// violation; a withdrawal is refused here (see [`Canonical::decode_document`]).
    pub fn decode_any(bytes: &[u8]) -> Result<Message, DecodeError> {
        message_only(Self::decode_document(bytes)?)
    }

    /// Decodes either form of any document of either version.
    pub fn decode_document(bytes: &[u8]) -> Result<Document, DecodeError> {
        let v: Value = parse_json(bytes)?;
        let form = if v.get("id").is_some() {
            Form::Stored
        } else {
            Form::Submission
        };
        Self::decode_value_document(v, form)
    }

    /// Decodes a parsed message in the given form.
    pub fn decode_value(v: Value, form: Form) -> Result<Message, DecodeError> {
        message_only(Self::decode_value_document(v, form)?)
    }

    /// Decodes a parsed document in the given form.
    pub fn decode_value_document(v: Value, form: Form) -> Result<Document, DecodeError> {
        let message_type = v
            .get("type")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<MessageType>().ok());
        let errs = schema::check(form, &v);
        if !errs.is_empty() {
            return Err(DecodeError::invalid(message_type, errs));
        }
        Document::from_value(v).map_err(|e| DecodeError::invalid(message_type, Violations(vec![e])))
    }
}

pub(crate) fn message_only(d: Document) -> Result<Message, DecodeError> {
    match d {
        Document::Message(m) => Ok(m),
        Document::Withdrawal(_) => Err(DecodeError::invalid(
            None,
            Violations(vec![jxg_schema::Violation::new(
                "type",
                "a withdrawal is not read here: it names a message, it is not one",
            )]),
        )),
    }
}

/// Parses JSON strictly, naming line and column of the first fault. A member name that occurs
/// twice in one object is refused (400) with the JSON pointer of its second occurrence: JSON
/// leaves such a document's meaning open, and readers that keep the first or the last value would
/// see different documents (RFC 8259 §4), so for this gateway it is not well-formed.
pub fn parse_json(bytes: &[u8]) -> Result<Value, DecodeError> {
    use serde::de::DeserializeSeed;
    let strict = Strict::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = (&strict)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| match strict.pointer() {
        Some(pointer) => DecodeError {
            message_type: None,
            rejection: Rejection::Layout(Violations(vec![jxg_schema::Violation::new(
                pointer,
                "repeats a member name of its object; each name may occur once",
            )])),
        },
        None => DecodeError::malformed(format!(
            "not JSON: {} at line {}, column {}",
            classify(&e),
            e.line(),
            e.column()
        )),
    })
}

/// Builds a [`Value`] like serde_json's own, refusing a repeated member name. The pointer of the
/// repetition is put together only on that error, as it unwinds (the segments innermost first),
/// so reading a good document costs one map lookup per member more than serde_json's own.
#[derive(Default)]
struct Strict {
    repeated: std::cell::RefCell<Option<Vec<String>>>,
}

impl Strict {
    /// Adds the segment of the value being unwound to the repetition's pointer, if there is one.
    fn outer(&self, segment: impl FnOnce() -> String) {
        if let Some(p) = self.repeated.borrow_mut().as_mut() {
            p.push(segment());
        }
    }
    /// The JSON pointer (RFC 6901) of the repetition.
    fn pointer(&self) -> Option<String> {
        let segments = self.repeated.take()?;
        Some(
            segments
                .iter()
                .rev()
                .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
                .collect(),
        )
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for &Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &Strict {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.outer(|| items.len().to_string());
                    return Err(e);
                }
            }
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        use serde_json::map::Entry;
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match map.next_value_seed(self) {
                Ok(v) => v,
                Err(e) => {
                    self.outer(|| key.clone());
                    return Err(e);
                }
            };
            match members.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(first) => {
                    *self.repeated.borrow_mut() = Some(vec![first.key().clone()]);
                    return Err(serde::de::Error::custom("a repeated member name"));
                }
            }
        }
        Ok(Value::Object(members))
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Io => "read error",
    }
}

impl Adapter for Canonical {
    fn name(&self) -> &'static str {
        "canonical"
    }
    fn media_type(&self) -> &'static str {
        "application/json"
    }
    fn native_authority(&self) -> Option<&'static str> {
        Some("prison")
    }
    fn decode(&self, bytes: &[u8], _ctx: &Context<'_>) -> Result<Message, DecodeError> {
        Self::decode_any(bytes)
    }
    fn decode_document(&self, bytes: &[u8], _ctx: &Context<'_>) -> Result<Document, DecodeError> {
        Canonical::decode_document(bytes)
    }
    fn encode(&self, message: &Message, _ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        Ok(message.to_bytes_as(Version::V1))
    }
}

impl Adapter for CanonicalV2 {
    fn name(&self) -> &'static str {
        "canonical-v2"
    }
    fn media_type(&self) -> &'static str {
        "application/json"
    }
    fn native_authority(&self) -> Option<&'static str> {
        Some("prison")
    }
    fn decode(&self, bytes: &[u8], _ctx: &Context<'_>) -> Result<Message, DecodeError> {
        Canonical::decode_any(bytes)
    }
    fn decode_document(&self, bytes: &[u8], _ctx: &Context<'_>) -> Result<Document, DecodeError> {
        Canonical::decode_document(bytes)
    }
    fn encode(&self, message: &Message, _ctx: &Context<'_>) -> Result<Vec<u8>, EncodeError> {
        Ok(message.to_bytes_as(Version::V2))
    }
    fn carries_corrections(&self) -> bool {
        true
    }
    fn encode_withdrawal(
        &self,
        w: &Withdrawal,
        _ctx: &Context<'_>,
    ) -> Result<Vec<u8>, EncodeError> {
        Ok(w.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::read;

    fn repeated(json: &str) -> Vec<String> {
        match parse_json(json.as_bytes()).map_err(|e| e.rejection) {
            Err(Rejection::Layout(v)) => v.iter().map(|x| x.path.clone()).collect(),
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn a_repeated_member_name_is_named_by_its_pointer_at_any_depth() {
        assert_eq!(repeated(r#"{"a": 1, "a": 2}"#), ["/a"]);
        assert_eq!(
            repeated(r#"{"a": {"b": [0, {"c": 1, "c": 1}]}}"#),
            ["/a/b/1/c"]
        );
        assert_eq!(
            repeated(r#"[[], [{}, {"x": null, "x": null}]]"#),
            ["/1/1/x"]
        );
        // the same name written with an escape is the same name
        assert_eq!(repeated(r#"{"cpr": "1", "\u0063pr": "2"}"#), ["/cpr"]);
        // pointer escapes (RFC 6901)
        assert_eq!(repeated(r#"{"a/b": {"~": 1, "~": 2}}"#), ["/a~1b/~0"]);
        // the same name in sibling objects is no repetition
        let v = parse_json(br#"{"p": [{"n": 1}, {"n": 2}], "q": {"n": 3}}"#).unwrap();
        assert_eq!(v["p"][1]["n"], 2);
    }

    #[test]
    fn what_is_not_json_stays_malformed_and_values_read_as_serde_json_reads_them() {
        for bad in [
            &b"{\"a\": 1,}"[..],
            b"{\"a\" 1}",
            b"[1] [2]",
            b"",
            b"\"\xff\"",
        ] {
            let e = parse_json(bad).expect_err("not JSON");
            assert!(matches!(e.rejection, Rejection::Malformed { .. }), "{e:?}");
        }
        let text = r#"{"i": -7, "u": 18446744073709551615, "f": 1.5, "s": "æ\n", "b": true, "n": null, "a": [1, [2]], "o": {"z": 1, "y": 2}}"#;
        let ours = parse_json(text.as_bytes()).unwrap();
        let theirs: Value = serde_json::from_str(text).unwrap();
        assert_eq!(ours, theirs);
        // member order is kept, as serde_json's preserve_order keeps it
        assert_eq!(
            ours["o"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["z", "y"]
        );
    }

    #[test]
    fn every_invalid_canonical_sample_gets_its_status_and_pointer() {
        let manifest: Value =
            serde_json::from_slice(&read("canonical/invalid/manifest.json")).unwrap();
        for e in manifest.as_array().unwrap() {
            let file = e["file"].as_str().unwrap();
            let err =
                Canonical::decode_any(&read(&format!("canonical/invalid/{file}"))).expect_err(file);
            let (status, v) = match &err.rejection {
                Rejection::Layout(v) => (400, v),
                Rejection::Invalid(v) => (422, v),
                other => panic!("{file}: {other:?}"),
            };
            assert_eq!(status, e["status"], "{file}");
            let got: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
            for want in e["paths"].as_array().unwrap() {
                assert!(got.contains(&want.as_str().unwrap()), "{file}: {v}");
            }
            let text = v.to_string();
            for secret in ["0104909995", "Jens Peter", "Hansen", "B-114"] {
                assert!(!text.contains(secret), "{file}: {text}");
            }
        }
    }
}
