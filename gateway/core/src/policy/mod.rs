//! Security policies (docs/SECURITY.md, "Policies"): who may send and receive what (Cedar,
//! [`authorize`]) and what of a message each recipient may see ([`disclosure`]). A policy set is
//! loaded whole or not at all; [`PolicyStore`] swaps sets atomically, and a message keeps the set
//! it started with.

pub mod authorize;
pub mod disclosure;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use jxg_schema::message::Purpose;
use jxg_schema::{Message, MessageType};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use authorize::{DEFAULT_DENY, Facts, Verdict};
pub use disclosure::Removal;

/// One policy file's name and text.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// A fault in a policy file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The files a policy set is made of.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Where they came from: a folder, or `embedded`.
    pub origin: String,
    pub schema: Source,
    pub policies: Vec<Source>,
    pub disclosure: Source,
}

pub const SCHEMA_FILE: &str = "schema.cedarschema";
pub const DISCLOSURE_FILE: &str = "disclosure.toml";

impl Sources {
    /// The policies shipped in `policies/`, built into the binary.
    pub fn embedded() -> Self {
        let src = |name: &str, text: &str| Source {
            name: name.into(),
            text: text.into(),
        };
        Self {
            origin: "embedded".into(),
            schema: src(
                SCHEMA_FILE,
                include_str!("../../../../policies/schema.cedarschema"),
            ),
            policies: vec![src(
                "authorization.cedar",
                include_str!("../../../../policies/authorization.cedar"),
            )],
            disclosure: src(
                DISCLOSURE_FILE,
                include_str!("../../../../policies/disclosure.toml"),
            ),
        }
    }

    /// `schema.cedarschema`, every `*.cedar` (by name) and `disclosure.toml` of a folder.
    pub fn read_dir(dir: &Path) -> Result<Self, Vec<PolicyError>> {
        let fault = |file: &str, message: String| PolicyError {
            file: file.into(),
            line: 0,
            message,
        };
        let read = |name: &str| -> Result<Source, PolicyError> {
            std::fs::read_to_string(dir.join(name))
                .map(|text| Source {
                    name: name.into(),
                    text,
                })
                .map_err(|e| {
                    fault(
                        name,
                        format!("cannot read {}: {e}", dir.join(name).display()),
                    )
                })
        };
        let mut errors = Vec::new();
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".cedar"))
                .collect(),
            Err(e) => {
                return Err(vec![fault(
                    &dir.display().to_string(),
                    format!("cannot read the folder: {e}"),
                )]);
            }
        };
        names.sort();
        if names.is_empty() {
            errors.push(fault(
                &dir.display().to_string(),
                "no *.cedar policy file".into(),
            ));
        }
        let mut policies = Vec::new();
        for n in &names {
            match read(n) {
                Ok(s) => policies.push(s),
                Err(e) => errors.push(e),
            }
        }
        let schema = read(SCHEMA_FILE).map_err(|e| errors.push(e));
        let disclosure = read(DISCLOSURE_FILE).map_err(|e| errors.push(e));
        match (schema, disclosure) {
            (Ok(schema), Ok(disclosure)) if errors.is_empty() => Ok(Self {
                origin: dir.display().to_string(),
                schema,
                policies,
                disclosure,
            }),
            _ => Err(errors),
        }
    }

    /// SHA-256 over every file's name and text, in load order.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for s in std::iter::once(&self.schema)
            .chain(&self.policies)
            .chain(std::iter::once(&self.disclosure))
        {
            h.update(s.name.as_bytes());
            h.update([0]);
            h.update(s.text.len().to_be_bytes());
            h.update(s.text.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Why a recipient or sender was refused: the deciding policy and a reason without personal data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub rule: String,
    pub reason: String,
}

/// What a recipient gets of a message.
#[derive(Debug, Clone)]
pub struct View {
    pub message: Message,
    pub removed: Vec<Removal>,
}

/// A loaded, validated policy set.
#[derive(Debug)]
pub struct Policies {
    authorization: authorize::Authorization,
    disclosure: disclosure::Disclosure,
    clearances: BTreeMap<String, Vec<String>>,
    pub digest: String,
    pub origin: String,
    pub loaded_at: String,
}

impl Policies {
    /// Loads a set for these authorities (id → clearances); every error at once.
    pub fn load(
        sources: &Sources,
        authorities: &BTreeMap<String, Vec<String>>,
    ) -> Result<Self, Vec<PolicyError>> {
        let ids: BTreeSet<String> = authorities.keys().cloned().collect();
        let authorization = authorize::load(&sources.schema, &sources.policies, authorities);
        let disclosure = disclosure::load(&sources.disclosure, &ids);
        match (authorization, disclosure) {
            (Ok(authorization), Ok(disclosure)) => Ok(Self {
                authorization,
                disclosure,
                clearances: authorities.clone(),
                digest: sources.digest(),
                origin: sources.origin.clone(),
                loaded_at: jxg_schema::values::Instant::now().to_string(),
            }),
            (a, d) => Err(a
                .err()
                .into_iter()
                .flatten()
                .chain(d.err().into_iter().flatten())
                .collect()),
        }
    }

    fn refusal(v: Verdict, what: String) -> Result<Verdict, Refusal> {
        if v.allowed {
            Ok(v)
        } else {
            Err(Refusal {
                rule: v.policies.join(", "),
                reason: what,
            })
        }
    }

    /// May `sender` send `m`?
    pub fn may_send(&self, sender: &str, m: &Message) -> Result<Verdict, Refusal> {
        let t = m.message_type();
        let v = self.authorization.send(&Facts::of(m, sender));
        let why = format!(
            "{sender} may not send {t} for {} ({})",
            m.purpose,
            v.policies.join(", ")
        );
        Self::refusal(v, why)
    }

    /// May `corrector` correct or withdraw `original`, which `sender` sent?
    pub fn may_correct(
        &self,
        corrector: &str,
        sender: &str,
        original: &Message,
    ) -> Result<Verdict, Refusal> {
        let v = self
            .authorization
            .correct(corrector, &Facts::of(original, sender));
        let why = format!(
            "{corrector} may not correct or withdraw this {} of {sender} ({})",
            original.message_type(),
            v.policies.join(", ")
        );
        Self::refusal(v, why)
    }

    /// May `sender` send type `t` for any purpose? Answers a document that failed to decode,
    /// so that a type the sender may only receive is 403 whatever else is wrong with it.
    pub fn may_send_type(&self, sender: &str, t: MessageType) -> Result<(), Refusal> {
        let mut last = None;
        for p in Purpose::ALL {
            let facts = Facts {
                message_type: t,
                purpose: *p,
                classification: jxg_schema::message::Classification::Confidential,
                sender,
                sentence_must_be_enforced: true,
                defendant_in_custody: true,
                custody_hearing_requested: true,
            };
            let v = self.authorization.send(&facts);
            if v.allowed {
                return Ok(());
            }
            last = Some(v);
        }
        let policies = last.map(|v| v.policies.join(", ")).unwrap_or_default();
        Err(Refusal {
            reason: format!("{sender} may not send {t} ({policies})"),
            rule: policies,
        })
    }

    /// May `recipient` receive `m` (sent by `sender`)?
    pub fn may_receive(
        &self,
        recipient: &str,
        sender: &str,
        m: &Message,
    ) -> Result<Verdict, Refusal> {
        let v = self.authorization.receive(recipient, &Facts::of(m, sender));
        let why = format!(
            "{recipient} may not receive this {} ({})",
            m.message_type(),
            v.policies.join(", ")
        );
        Self::refusal(v, why)
    }

    /// What `recipient` may see of `m` with the clearances the set was loaded with; an error
    /// when what is left is no valid message.
    pub fn minimise(&self, recipient: &str, m: &Message) -> Result<View, Refusal> {
        let clearances = self
            .clearances
            .get(recipient)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        self.minimise_cleared(recipient, clearances, m)
    }

    /// What `recipient`, holding `clearances` (its registry entry's), may see of `m`.
    pub fn minimise_cleared(
        &self,
        recipient: &str,
        clearances: &[String],
        m: &Message,
    ) -> Result<View, Refusal> {
        self.minimise_json(recipient, clearances, m, &m.body.to_json())
            .map(|(view, _)| view)
    }

    /// As [`Policies::minimise_cleared`], with `body` the JSON of `m`'s body (made once for
    /// every recipient of a message); also gives the JSON of the body left when anything was
    /// removed.
    pub fn minimise_json(
        &self,
        recipient: &str,
        clearances: &[String],
        m: &Message,
        body: &Value,
    ) -> Result<(View, Option<Value>), Refusal> {
        let t = m.message_type();
        let mut left = body.clone();
        let removed = self.disclosure.apply(recipient, clearances, t, &mut left);
        if removed.is_empty() {
            let view = View {
                message: m.clone(),
                removed,
            };
            return Ok((view, None));
        }
        match jxg_schema::message::Body::from_json(t, &left) {
            Ok(b) => {
                let message = Message {
                    id: m.id,
                    sender: m.sender.clone(),
                    source_document_id: m.source_document_id.clone(),
                    occurred_at: m.occurred_at,
                    received_at: m.received_at,
                    purpose: m.purpose,
                    classification: m.classification,
                    case: m.case.clone(),
                    correlation_id: m.correlation_id.clone(),
                    replaces: m.replaces.clone(),
                    body: b,
                };
                Ok((View { message, removed }, Some(left)))
            }
            Err(e) => Err(Refusal {
                rule: removed
                    .iter()
                    .map(|r| r.rule.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: format!(
                    "what the disclosure rules leave is not a valid message: {}: {}",
                    e.path, e.message
                ),
            }),
        }
    }

    /// The Cedar side, for benchmarks.
    pub fn authorization(&self) -> &authorize::Authorization {
        &self.authorization
    }

    /// What is loaded, for `GET /admin/v1/policies`.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "digest": self.digest,
            "origin": self.origin,
            "loaded_at": self.loaded_at,
            "policies": self.authorization.loaded,
            "disclosure": self.disclosure.entries(),
        })
    }

    /// Every policy, profile and rule id.
    pub fn ids(&self) -> Vec<String> {
        self.authorization
            .loaded
            .iter()
            .map(|l| l.id.clone())
            .chain(self.disclosure.entries().into_iter().map(|e| e.id))
            .collect()
    }
}

/// One decision of the policies, for an explanation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// `permit` or `deny`.
    pub effect: &'static str,
    /// The determining policies (permit), or the rule that denied.
    pub policies: Vec<String>,
    /// Why it was denied.
    pub reason: Option<String>,
}

impl Decision {
    fn of(v: &Result<Verdict, Refusal>) -> Self {
        match v {
            Ok(v) => Self {
                effect: "permit",
                policies: v.policies.clone(),
                reason: None,
            },
            Err(r) => Self {
                effect: "deny",
                policies: vec![r.rule.clone()],
                reason: Some(r.reason.clone()),
            },
        }
    }

    fn line(&self) -> String {
        format!("{} ({})", self.effect, self.policies.join(", "))
    }
}

/// Every decision the policies make about one message for one recipient: the send decision,
/// whether routing proposes the recipient, the receive decision, and each removal with its
/// rule. `jxg policy explain` prints it ([`Explanation::lines`]); the admin API serves it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    pub message_type: String,
    pub sender: String,
    pub recipient: String,
    pub purpose: String,
    pub classification: String,
    pub policies: String,
    pub digest: String,
    pub send: Decision,
    /// Whether routing sends this message type to the recipient at all.
    pub routed: bool,
    pub receive: Decision,
    /// Each cut of the recipient's copy, with its rule (paths, never values).
    pub removed: Vec<Removal>,
    /// Whether the recipient receives it (routing aside).
    pub receives: bool,
    /// Why the minimisation could not make a copy, when it could not.
    pub skipped: Option<Refusal>,
}

/// Explains the policies' decisions about `m` from `sender` for `recipient`.
pub fn explain(policies: &Policies, m: &Message, sender: &str, recipient: &str) -> Explanation {
    let send = policies.may_send(sender, m);
    let receive = policies.may_receive(recipient, sender, m);
    let routed = crate::routing::default_recipients(m)
        .iter()
        .any(|r| r.as_str() == recipient);
    let (removed, skipped) = if send.is_ok() && receive.is_ok() {
        match policies.minimise(recipient, m) {
            Ok(view) => (view.removed, None),
            Err(r) => (Vec::new(), Some(r)),
        }
    } else {
        (Vec::new(), None)
    };
    Explanation {
        message_type: m.message_type().to_string(),
        sender: sender.to_string(),
        recipient: recipient.to_string(),
        purpose: m.purpose.to_string(),
        classification: m.classification.to_string(),
        policies: policies.origin.clone(),
        digest: policies.digest.clone(),
        receives: send.is_ok() && receive.is_ok() && skipped.is_none(),
        send: Decision::of(&send),
        routed,
        receive: Decision::of(&receive),
        removed,
        skipped,
    }
}

impl Explanation {
    /// The explanation as `jxg policy explain` prints it.
    pub fn lines(&self) -> Vec<String> {
        let (t, sender, recipient) = (&self.message_type, &self.sender, &self.recipient);
        let mut out = vec![
            format!(
                "message   {t} from {sender}, purpose {}, classification {}",
                self.purpose, self.classification
            ),
            format!("policies  {} (digest {})", self.policies, self.digest),
            format!("send      {sender}: {}", self.send.line()),
            format!(
                "route     {recipient}: {}",
                if self.routed {
                    "proposed by routing"
                } else {
                    "not proposed by routing (it would not be sent there)"
                }
            ),
            format!("receive   {recipient}: {}", self.receive.line()),
        ];
        if self.send.effect == "deny" || self.receive.effect == "deny" {
            out.push(format!(
                "result    {recipient} does not receive this message"
            ));
            return out;
        }
        match &self.skipped {
            None => {
                for r in &self.removed {
                    out.push(format!("{:<9} {} by {}", r.action, r.path, r.rule));
                }
                out.push(format!(
                    "result    {recipient} receives {t}{}",
                    match self.removed.len() {
                        0 => " whole".to_string(),
                        n => format!(" less {n} field(s)"),
                    }
                ));
            }
            Some(r) => out.push(format!("result    skipped: {} ({})", r.reason, r.rule)),
        }
        if !self.routed {
            out.push("note      routing does not send it to this recipient".into());
        }
        out
    }
}

/// Where a gateway's policies come from.
#[derive(Debug, Clone)]
pub enum Origin {
    Embedded,
    Dir(PathBuf),
}

impl Origin {
    pub fn read(&self) -> Result<Sources, Vec<PolicyError>> {
        match self {
            Origin::Embedded => Ok(Sources::embedded()),
            Origin::Dir(d) => Sources::read_dir(d),
        }
    }
}

/// The policy set in force, swapped whole by a reload.
#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwap<Policies>,
    origin: Origin,
    authorities: BTreeMap<String, Vec<String>>,
    reloading: Mutex<()>,
}

/// A reload's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    pub previous_digest: String,
    pub digest: String,
    pub changed: bool,
}

impl PolicyStore {
    pub fn open(
        origin: Origin,
        authorities: BTreeMap<String, Vec<String>>,
    ) -> Result<Self, Vec<PolicyError>> {
        let policies = Policies::load(&origin.read()?, &authorities)?;
        Ok(Self {
            current: ArcSwap::from_pointee(policies),
            origin,
            authorities,
            reloading: Mutex::new(()),
        })
    }

    /// The set in force now; a message holds on to it until it is stored.
    pub fn current(&self) -> Arc<Policies> {
        self.current.load_full()
    }

    /// Reads and validates the set again and swaps it in, or keeps the old one and says why.
    pub fn reload(&self) -> Result<Reloaded, Vec<PolicyError>> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let next = Policies::load(&self.origin.read()?, &self.authorities)?;
        let previous = self.current.swap(Arc::new(next));
        let digest = self.current.load().digest.clone();
        Ok(Reloaded {
            changed: previous.digest != digest,
            previous_digest: previous.digest.clone(),
            digest,
        })
    }
}

#[cfg(test)]
mod tests;
