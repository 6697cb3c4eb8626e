//! Authorization with Cedar: authorities are principals, `send`, `receive` and `correct` the
//! actions, the message the resource (policies/schema.cedarschema).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicyId, PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use jxg_schema::message::{Body, Classification, Purpose};
use jxg_schema::{Message, MessageType};
use miette::Diagnostic;

use super::{PolicyError, Source};

/// What Cedar decided and the policies that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The determining policies' ids; [`DEFAULT_DENY`] when nothing permitted.
    pub policies: Vec<String>,
}

/// Named when no policy permits (Cedar's default deny).
pub const DEFAULT_DENY: &str = "default-deny";

/// One loaded policy, for `GET /admin/v1/policies` and `explain`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Loaded {
    pub id: String,
    pub effect: &'static str,
    pub file: String,
    pub line: usize,
}

/// The facts of a message that policies may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Facts<'a> {
    pub message_type: MessageType,
    pub purpose: Purpose,
    pub classification: Classification,
    pub sender: &'a str,
    pub sentence_must_be_enforced: bool,
    pub defendant_in_custody: bool,
    pub custody_hearing_requested: bool,
}

impl<'a> Facts<'a> {
    pub fn of(m: &Message, sender: &'a str) -> Self {
        Self {
            message_type: m.message_type(),
            purpose: m.purpose,
            classification: m.classification,
            sender,
            sentence_must_be_enforced: matches!(&m.body, Body::VerdictIssued(v) if v.sentence.must_be_enforced()),
            defendant_in_custody: matches!(&m.body, Body::HearingScheduled(h) if h.defendant_in_custody),
            custody_hearing_requested: matches!(&m.body, Body::PersonArrested(a) if a.custody_hearing_requested),
        }
    }
}

struct Names {
    authority: EntityTypeName,
    message: EntityTypeName,
    message_type: EntityTypeName,
    purpose: EntityTypeName,
    classification: EntityTypeName,
    send: EntityUid,
    receive: EntityUid,
    correct: EntityUid,
}

/// What a principal asks to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Act {
    Send,
    Receive,
    /// Correct or withdraw it (the message is the one corrected, its sender its first sender).
    Correct,
}

impl Names {
    fn new() -> Self {
        let name = |s: &str| EntityTypeName::from_str(s).expect("a valid type name");
        let action = |a: &str| EntityUid::from_type_name_and_id(name("Action"), EntityId::new(a));
        Self {
            authority: name("Authority"),
            message: name("Message"),
            message_type: name("MessageType"),
            purpose: name("Purpose"),
            classification: name("Classification"),
            send: action("send"),
            receive: action("receive"),
            correct: action("correct"),
        }
    }
    fn uid(&self, t: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
    }
}

/// The Cedar side of a policy set.
pub struct Authorization {
    policies: PolicySet,
    /// Each registered authority as an entity, with its clearances.
    authorities: HashMap<String, Entity>,
    names: Names,
    authorizer: Authorizer,
    pub loaded: Vec<Loaded>,
    /// Decisions already made by this set: a decision depends on nothing but the principal, the
    /// action and the facts, which take few distinct values (at most some tens of thousands).
    decided: std::sync::RwLock<HashMap<(String, Act, FactsKey), Verdict>>,
}

/// [`Facts`] with an owned sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FactsKey {
    message_type: MessageType,
    purpose: Purpose,
    classification: Classification,
    sender: String,
    flags: [bool; 3],
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("policies", &self.loaded.len())
            .finish()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// A Cedar diagnostic as errors with the line of its first label.
fn diagnostic(src: &Source, d: &dyn Diagnostic, at: Option<usize>) -> PolicyError {
    let offset = d
        .labels()
        .and_then(|mut l| l.next())
        .map(|l| l.offset())
        .or(at)
        .unwrap_or(0);
    let mut message = d.to_string();
    if let Some(help) = d.help() {
        message.push_str(&format!(" ({help})"));
    }
    PolicyError {
        file: src.name.clone(),
        line: line_of(&src.text, offset),
        message,
    }
}

/// Parses the schema and every policy file, validates the policies strictly against the schema
/// and the registered authorities, and names every policy by its `@id`.
pub fn load(
    schema: &Source,
    files: &[Source],
    authorities: &BTreeMap<String, Vec<String>>,
) -> Result<Authorization, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let schema_parsed = match Schema::from_cedarschema_str(&schema.text) {
        Ok((s, _warnings)) => Some(s),
        Err(e) => {
            errors.push(diagnostic(schema, &e, None));
            None
        }
    };
    let names = Names::new();
    let mut all = PolicySet::new();
    let mut loaded = Vec::new();
    let mut ids = BTreeSet::new();
    for src in files {
        let set = match PolicySet::from_str(&src.text) {
            Ok(s) => s,
            Err(e) => {
                errors.extend(e.iter().map(|d| diagnostic(src, d, None)));
                continue;
            }
        };
        if let Some(schema) = &schema_parsed {
            // validated under their @ids, so that the errors name them
            let mut named = PolicySet::new();
            for p in set.policies() {
                let id = p.annotation("id").map(PolicyId::new);
                let p = id.map(|id| p.new_id(id)).unwrap_or_else(|| p.clone());
                if named.add(p.clone()).is_err() {
                    // a duplicate @id, reported below; validate it under Cedar's own id
                    let _ = named.add(p.new_id(PolicyId::new(format!(
                        "{}#{}",
                        p.id(),
                        named.num_of_policies()
                    ))));
                }
            }
            let result = Validator::new(schema.clone()).validate(&named, ValidationMode::Strict);
            errors.extend(result.validation_errors().map(|d| diagnostic(src, d, None)));
        }
        // policies in the order they stand in the file
        let mut policies: Vec<&Policy> = set.policies().collect();
        let at = |p: &Policy| {
            p.to_cedar()
                .and_then(|t| src.text.find(t.trim()))
                .unwrap_or(0)
        };
        policies.sort_by_key(|p| at(p));
        for p in policies {
            let offset = at(p);
            let line = line_of(&src.text, offset);
            let Some(id) = p.annotation("id") else {
                errors.push(PolicyError {
                    file: src.name.clone(),
                    line,
                    message: "every policy needs an @id(\"…\") annotation".into(),
                });
                continue;
            };
            if !ids.insert(id.to_string()) || id == DEFAULT_DENY {
                errors.push(PolicyError {
                    file: src.name.clone(),
                    line,
                    message: format!("duplicate policy id `{id}`"),
                });
                continue;
            }
            for uid in p.entity_literals() {
                if uid.type_name() == &names.authority
                    && !authorities.contains_key(uid.id().unescaped())
                {
                    let needle = format!("\"{}\"", uid.id().unescaped());
                    let off = p
                        .to_cedar()
                        .and_then(|t| t.find(&needle))
                        .map(|o| offset + o)
                        .unwrap_or(offset);
                    errors.push(PolicyError {
                        file: src.name.clone(),
                        line: line_of(&src.text, off),
                        message: format!(
                            "unknown authority `{}` (registered: {})",
                            uid.id().unescaped(),
                            authorities.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
            loaded.push(Loaded {
                id: id.to_string(),
                effect: match p.effect() {
                    cedar_policy::Effect::Permit => "permit",
                    cedar_policy::Effect::Forbid => "forbid",
                },
                file: src.name.clone(),
                line,
            });
            if let Err(e) = all.add(p.new_id(PolicyId::new(id))) {
                errors.push(PolicyError {
                    file: src.name.clone(),
                    line,
                    message: e.to_string(),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let entities = authorities
        .iter()
        .map(|(id, clearances)| {
            let entity = Entity::new(
                names.uid(&names.authority, id),
                HashMap::from([(
                    "clearances".to_string(),
                    RestrictedExpression::new_set(
                        clearances
                            .iter()
                            .map(|c| RestrictedExpression::new_string(c.clone())),
                    ),
                )]),
                HashSet::new(),
            )
            .expect("string attributes evaluate");
            (id.clone(), entity)
        })
        .collect::<HashMap<_, _>>();
    Entities::from_entities(entities.values().cloned(), schema_parsed.as_ref()).map_err(|e| {
        vec![PolicyError {
            file: schema.name.clone(),
            line: 1,
            message: format!("authorities do not fit the schema: {e}"),
        }]
    })?;
    Ok(Authorization {
        policies: all,
        authorities: entities,
        names,
        authorizer: Authorizer::new(),
        loaded,
        decided: Default::default(),
    })
}

fn level(c: Classification) -> i64 {
    match c {
        Classification::Internal => 1,
        Classification::Confidential => 2,
        Classification::Secret => 3,
    }
}

impl Authorization {
    fn message_entity(&self, f: &Facts) -> Entity {
        let n = &self.names;
        let attrs = HashMap::from([
            (
                "type".to_string(),
                RestrictedExpression::new_entity_uid(
                    n.uid(&n.message_type, f.message_type.as_str()),
                ),
            ),
            (
                "purpose".to_string(),
                RestrictedExpression::new_entity_uid(n.uid(&n.purpose, f.purpose.as_str())),
            ),
            (
                "classification".to_string(),
                RestrictedExpression::new_entity_uid(
                    n.uid(&n.classification, f.classification.as_str()),
                ),
            ),
            (
                "level".to_string(),
                RestrictedExpression::new_long(level(f.classification)),
            ),
            (
                "sender".to_string(),
                RestrictedExpression::new_entity_uid(n.uid(&n.authority, f.sender)),
            ),
            (
                "sentence_must_be_enforced".to_string(),
                RestrictedExpression::new_bool(f.sentence_must_be_enforced),
            ),
            (
                "defendant_in_custody".to_string(),
                RestrictedExpression::new_bool(f.defendant_in_custody),
            ),
            (
                "custody_hearing_requested".to_string(),
                RestrictedExpression::new_bool(f.custody_hearing_requested),
            ),
        ]);
        Entity::new(n.uid(&n.message, "message"), attrs, HashSet::new())
            .expect("literal attributes evaluate")
    }

    fn decide(&self, principal: &str, act: Act, f: &Facts) -> Verdict {
        let key = (
            principal.to_string(),
            act,
            FactsKey {
                message_type: f.message_type,
                purpose: f.purpose,
                classification: f.classification,
                sender: f.sender.to_string(),
                flags: [
                    f.sentence_must_be_enforced,
                    f.defendant_in_custody,
                    f.custody_hearing_requested,
                ],
            },
        );
        let cache = |d: &Self| d.decided.read().ok().and_then(|m| m.get(&key).cloned());
        if let Some(v) = cache(self) {
            return v;
        }
        let v = self.evaluate(principal, act, f);
        // unregistered principals or senders are not remembered: the set stays bounded
        if self.authorities.contains_key(principal) && self.authorities.contains_key(f.sender) {
            if let Ok(mut m) = self.decided.write() {
                m.insert(key, v.clone());
            }
        }
        v
    }

    fn evaluate(&self, principal: &str, act: Act, f: &Facts) -> Verdict {
        let n = &self.names;
        let message = self.message_entity(f);
        let resource = message.uid();
        // the principal, the sender and the message: all a decision can reach
        let mut parts = vec![message];
        parts.extend(self.authorities.get(principal).cloned());
        if f.sender != principal {
            parts.extend(self.authorities.get(f.sender).cloned());
        }
        let Ok(entities) = Entities::from_entities(parts, None) else {
            return Verdict {
                allowed: false,
                policies: vec![DEFAULT_DENY.into()],
            };
        };
        let action = match act {
            Act::Send => &n.send,
            Act::Receive => &n.receive,
            Act::Correct => &n.correct,
        };
        let Ok(request) = Request::new(
            n.uid(&n.authority, principal),
            action.clone(),
            resource,
            Context::empty(),
            None,
        ) else {
            return Verdict {
                allowed: false,
                policies: vec![DEFAULT_DENY.into()],
            };
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        policies.sort();
        let allowed = response.decision() == Decision::Allow;
        if policies.is_empty() {
            policies.push(DEFAULT_DENY.into());
        }
        Verdict { allowed, policies }
    }

    /// May `sender` send a message with these facts?
    pub fn send(&self, f: &Facts) -> Verdict {
        self.decide(f.sender, Act::Send, f)
    }

    /// May `recipient` receive a message with these facts?
    pub fn receive(&self, recipient: &str, f: &Facts) -> Verdict {
        self.decide(recipient, Act::Receive, f)
    }

    /// May `corrector` correct or withdraw a message with these facts (`f.sender` sent it)?
    pub fn correct(&self, corrector: &str, f: &Facts) -> Verdict {
        self.decide(corrector, Act::Correct, f)
    }

    /// As [`Authorization::receive`], evaluated by Cedar even when decided before (benchmarks).
    pub fn receive_uncached(&self, recipient: &str, f: &Facts) -> Verdict {
        self.evaluate(recipient, Act::Receive, f)
    }
}
