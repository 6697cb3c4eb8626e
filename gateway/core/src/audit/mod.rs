//! The audit log (LED art. 25; docs/SECURITY.md, "Audit"): one entry per processing operation,
//! written in the same store transaction as the state change it records, chained by SHA-256 and
//! anchored by signed checkpoints. Subjects are HMAC-SHA256 pseudonyms of CPR numbers; the log
//! never holds a CPR number, a name or a body.

pub mod checkpoints;
pub mod verify;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Every kind of audited operation, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A message was accepted (the 202).
    Received,
    /// A document was refused at ingest (4xx), with the status and reason.
    Rejected,
    /// A policy decided a recipient (permit, or the refusal and its policy).
    Decided,
    /// Disclosure rules removed something for a recipient (paths and rules only).
    Minimised,
    /// The recipient's copy was signed.
    Signed,
    /// The copy waits for delivery.
    Queued,
    /// Delivered (push 2xx, broker confirm).
    Delivered,
    /// A delivery attempt failed and will be retried.
    DeliveryFailed,
    /// Delivery gave up.
    DeadLettered,
    /// A pull recipient acknowledged its copy.
    Acked,
    /// An operator had a message delivered again.
    Replayed,
    /// An operator or auditor read message metadata or the audit log.
    Consulted,
    /// Retention removed bodies or metadata.
    Purged,
    /// The policy set was swapped.
    PolicyReloaded,
    /// The signing key was rotated.
    KeyRotated,
    // new kinds go last: stored entries name events by their place in this list
    /// A message's bodies and their key were destroyed at its sender's withdrawal for erasure.
    Erased,
    /// An operator confirmed that a recipient flagged in a correction or withdrawal was told
    /// by other means.
    Notified,
}

impl Event {
    pub const ALL: &'static [Event] = &[
        Event::Received,
        Event::Rejected,
        Event::Decided,
        Event::Minimised,
        Event::Signed,
        Event::Queued,
        Event::Delivered,
        Event::DeliveryFailed,
        Event::DeadLettered,
        Event::Acked,
        Event::Replayed,
        Event::Consulted,
        Event::Purged,
        Event::PolicyReloaded,
        Event::KeyRotated,
        Event::Erased,
        Event::Notified,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Event::Received => "received",
            Event::Rejected => "rejected",
            Event::Decided => "decided",
            Event::Minimised => "minimised",
            Event::Signed => "signed",
            Event::Queued => "queued",
            Event::Delivered => "delivered",
            Event::DeliveryFailed => "delivery_failed",
            Event::DeadLettered => "dead_lettered",
            Event::Acked => "acked",
            Event::Replayed => "replayed",
            Event::Consulted => "consulted",
            Event::Purged => "purged",
            Event::Erased => "erased",
            Event::Notified => "notified",
            Event::PolicyReloaded => "policy_reloaded",
            Event::KeyRotated => "key_rotated",
        }
    }
}

/// An entry before the log gives it its place: what happened, to what, by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub event: Event,
    /// The authority id, or `admin:operator` / `admin:auditor`, or `gateway`.
    pub actor: String,
    pub message_id: Option<Uuid>,
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    pub recipient: Option<String>,
    pub purpose: Option<String>,
    /// HMAC-SHA256 pseudonyms of the CPR numbers concerned.
    pub subjects: Vec<String>,
    /// The policy or disclosure rule that decided, where one did.
    pub rule: Option<String>,
    /// Places, counts and reasons; never a value of a message.
    pub detail: Option<String>,
}

impl Record {
    pub fn new(event: Event, actor: impl Into<String>) -> Self {
        Self {
            event,
            actor: actor.into(),
            message_id: None,
            message_type: None,
            recipient: None,
            purpose: None,
            subjects: vec![],
            rule: None,
            detail: None,
        }
    }
    pub fn message(mut self, id: Uuid, message_type: &str, purpose: Option<&str>) -> Self {
        self.message_id = Some(id);
        self.message_type = Some(message_type.into());
        self.purpose = purpose.map(String::from);
        self
    }
    pub fn recipient(mut self, r: &str) -> Self {
        self.recipient = Some(r.into());
        self
    }
    pub fn subjects(mut self, s: &[String]) -> Self {
        self.subjects = s.to_vec();
        self
    }
    pub fn rule(mut self, r: impl Into<String>) -> Self {
        self.rule = Some(r.into());
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

/// One entry of the log as stored. Its `hash` is SHA-256 (hex) of the entry serialised with
/// `hash` empty; `prev` is the previous entry's hash (64 zeros for the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: String,
    #[serde(flatten)]
    pub record: Record,
    pub prev: String,
    pub hash: String,
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Entry {
    /// The hash this entry must carry.
    pub fn compute_hash(&self) -> String {
        if self.hash.is_empty() {
            // an entry being chained: already in the form that is hashed
            return self.digest(&mut Vec::new());
        }
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        unhashed.digest(&mut Vec::new())
    }

    /// The hash of this entry as it is (its `hash` empty), its JSON written into `buf`.
    fn digest(&self, buf: &mut Vec<u8>) -> String {
        buf.clear();
        serde_json::to_writer(&mut *buf, self).expect("entries serialise");
        hex(&Sha256::digest(buf))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Where the chain stands: the next entry's seq and the last entry's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub next_seq: u64,
    pub last_hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            next_seq: 1,
            last_hash: GENESIS.into(),
        }
    }
}

impl Head {
    /// Places `records` after this head; returns the entries and the head after them.
    pub fn chain(&self, records: Vec<Record>, at: &str) -> (Vec<Entry>, Head) {
        let mut head = self.clone();
        // one buffer for every entry's JSON
        let mut buf = Vec::with_capacity(1024);
        let entries = records
            .into_iter()
            .map(|record| {
                let mut e = Entry {
                    seq: head.next_seq,
                    at: at.to_string(),
                    record,
                    prev: head.last_hash.clone(),
                    hash: String::new(),
                };
                e.hash = e.digest(&mut buf);
                head = Head {
                    next_seq: e.seq + 1,
                    last_hash: e.hash.clone(),
                };
                e
            })
            .collect();
        (entries, head)
    }
}

/// The payload of a checkpoint JWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub at: String,
}

/// Checkpoints at least every this many entries.
pub const CHECKPOINT_EVERY: u64 = 1000;
/// …and at least this often while entries arrive.
pub const CHECKPOINT_SECONDS: u64 = 60;

/// Turns CPR numbers into the log's pseudonyms with the secret audit key.
#[derive(Clone)]
pub struct Pseudonyms {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(..)")
    }
}

impl Pseudonyms {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        }
    }

    /// Reads the key file, refusing one that group or others may read.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        crate::signing::refuse_if_readable_by_others(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let secret = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if secret.len() < 32 {
            return Err(format!(
                "{}: an audit key has at least 32 bytes",
                path.display()
            ));
        }
        Ok(Self::new(&secret))
    }

    /// The pseudonym of one CPR number (its ten digits).
    pub fn of(&self, cpr: &str) -> String {
        let digits: String = cpr.chars().filter(char::is_ascii_digit).collect();
        hex(ring::hmac::sign(&self.key, digits.as_bytes()).as_ref())
    }

    /// A keyed hash of any other reference (`domain` keeps it apart from CPR pseudonyms).
    pub fn keyed(&self, domain: &str, value: &str) -> String {
        let mut input = format!("{domain}\0").into_bytes();
        input.extend_from_slice(value.as_bytes());
        hex(ring::hmac::sign(&self.key, &input).as_ref())
    }

    /// The pseudonyms of every CPR number in a canonical message, sorted, without repeats.
    pub fn subjects(&self, message: &impl Serialize) -> Vec<String> {
        self.subjects_in(&serde_json::to_value(message).unwrap_or(Value::Null))
    }

    /// As [`Pseudonyms::subjects`], of a message (or a part of one) already made JSON.
    pub fn subjects_in(&self, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        collect_cprs(v, &mut out);
        let mut s: Vec<String> = out.iter().map(|c| self.of(c)).collect();
        s.sort();
        s.dedup();
        s
    }
}

fn collect_cprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("cpr", Value::String(s)) => out.push(s.clone()),
                    _ => collect_cprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_cprs(v, out)),
        _ => {}
    }
}

/// Now, as the log writes times (UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_listed_once_and_names_itself_as_it_serialises() {
        let mut names = std::collections::BTreeSet::new();
        for e in Event::ALL {
            assert_eq!(serde_json::to_value(e).unwrap(), Value::from(e.as_str()));
            assert!(names.insert(e.as_str()));
        }
        assert_eq!(names.len(), 17);
    }

    #[test]
    fn a_chain_links_each_entry_to_the_one_before() {
        let (entries, head) = Head::default().chain(
            vec![
                Record::new(Event::Received, "police"),
                Record::new(Event::Queued, "gateway"),
            ],
            "2026-11-28T10:00:00.000Z",
        );
        assert_eq!(entries[0].seq, 1);
        assert_eq!(entries[0].prev, GENESIS);
        assert_eq!(entries[1].prev, entries[0].hash);
        assert_eq!(head.next_seq, 3);
        assert_eq!(head.last_hash, entries[1].hash);
        let mut changed = entries[1].clone();
        changed.record.actor = "courts".into();
        assert_ne!(changed.compute_hash(), entries[1].hash);
    }

    #[test]
    fn pseudonyms_never_show_the_number_and_ignore_its_dash() {
        let p = Pseudonyms::new(&[7u8; 32]);
        assert_eq!(p.of("0104909995"), p.of("010490-9995"));
        assert_ne!(
            p.of("0104909995"),
            Pseudonyms::new(&[8u8; 32]).of("0104909995")
        );
        assert!(!p.of("0104909995").contains("0104909995"));
        let m = serde_json::json!({"body": {"persons": [{"cpr": "0104909995"}, {"cpr": "0108629996"}, {"birth_date": "1985-03-12"}]}});
        assert_eq!(p.subjects(&m).len(), 2);
        assert_eq!(p.subjects_in(&m["body"]), p.subjects(&m));
    }
}
