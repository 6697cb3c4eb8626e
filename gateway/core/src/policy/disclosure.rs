//! Disclosure profiles and rules (`policies/disclosure.toml`): what of a message's body each
//! recipient may see. Paths are JSON pointers into the body with `*` for every array element,
//! checked against the canonical schema at load.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jxg_schema::MessageType;
use jxg_schema::values::Cpr;
use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use super::{PolicyError, Source};

/// One thing a recipient does not get, and the rule or profile that kept it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Removal {
    /// JSON pointer into the message as accepted (`/body/persons/1`).
    pub path: String,
    /// The profile or rule id.
    pub rule: String,
    /// `removed`, or `birth-date-only` where a CPR number became the birth date it encodes.
    pub action: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSrc {
    #[serde(default)]
    profile: Vec<ProfileSrc>,
    #[serde(default)]
    rule: Vec<RuleSrc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileSrc {
    id: Spanned<String>,
    recipient: Spanned<String>,
    types: Vec<Spanned<String>>,
    see: Vec<Spanned<String>>,
    #[serde(default)]
    birth_date_only: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSrc {
    id: Spanned<String>,
    #[serde(default)]
    recipients: Vec<Spanned<String>>,
    #[serde(default)]
    except: Vec<Spanned<String>>,
    #[serde(default)]
    unless_clearance: Option<String>,
    #[serde(default)]
    types: Vec<Spanned<String>>,
    select: Vec<Spanned<String>>,
    #[serde(default)]
    when: Option<Spanned<BTreeMap<String, Vec<Value>>>>,
    #[serde(default)]
    remove: Option<Spanned<bool>>,
    #[serde(default)]
    replace: Option<Spanned<String>>,
}

type Pattern = Vec<String>;

#[derive(Debug, Clone)]
enum Action {
    Remove,
    BirthDateOnly,
}

#[derive(Debug, Clone)]
struct Profile {
    id: String,
    see: Vec<Pattern>,
    birth_date_only: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    /// Empty: every recipient.
    recipients: BTreeSet<String>,
    except: BTreeSet<String>,
    unless_clearance: Option<String>,
    /// Empty: every type.
    types: BTreeSet<MessageType>,
    select: Vec<Pattern>,
    when: BTreeMap<String, Vec<Value>>,
    action: Action,
}

/// The loaded profiles and rules.
#[derive(Debug, Clone, Default)]
pub struct Disclosure {
    profiles: HashMap<(String, MessageType), Profile>,
    rules: Vec<Rule>,
}

/// A summary for `GET /admin/v1/policies`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub id: String,
    pub kind: &'static str,
}

fn parse_pattern(p: &str) -> Option<Pattern> {
    let rest = p.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// The canonical JSON Schema, walked by pointer.
struct SchemaWalk {
    root: Value,
}

impl SchemaWalk {
    fn new() -> Self {
        Self {
            root: serde_json::from_str(jxg_schema::schema::MESSAGE_SCHEMA)
                .expect("the embedded schema is JSON"),
        }
    }

    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(r) = v.get("$ref").and_then(Value::as_str) {
            match r
                .strip_prefix("#/$defs/")
                .and_then(|d| self.root["$defs"].get(d))
            {
                Some(d) => v = d,
                None => break,
            }
        }
        v
    }

    fn body(&self, t: MessageType) -> &Value {
        &self.root["$defs"][format!("body.{}", t.as_str())]
    }

    /// The schema of the value at `pattern` in a body of type `t`.
    fn at(&self, t: MessageType, pattern: &[String]) -> Option<&Value> {
        let mut node = self.resolve(self.body(t));
        for seg in pattern {
            node = if seg == "*" {
                node.get("items")?
            } else {
                node.get("properties")?.get(seg)?
            };
            node = self.resolve(node);
        }
        Some(node)
    }

    fn is_object(v: &Value) -> bool {
        v.get("properties").is_some()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses and checks `disclosure.toml` against the canonical schema and the registered
/// authorities; every error at once.
pub fn load(src: &Source, authorities: &BTreeSet<String>) -> Result<Disclosure, Vec<PolicyError>> {
    let err = |span: std::ops::Range<usize>, message: String| PolicyError {
        file: src.name.clone(),
        line: line_of(&src.text, span.start),
        message,
    };
    let file: FileSrc = toml::from_str(&src.text).map_err(|e| {
        vec![err(
            e.span().unwrap_or(0..0),
            e.message().trim().to_string(),
        )]
    })?;
    let walk = SchemaWalk::new();
    let mut errors = Vec::new();
    let mut ids = BTreeSet::new();
    let mut check_id = |id: &Spanned<String>, errors: &mut Vec<PolicyError>| {
        if !ids.insert(id.get_ref().clone()) {
            errors.push(err(id.span(), format!("duplicate id `{}`", id.get_ref())));
        }
    };
    let check_authority = |a: &Spanned<String>, errors: &mut Vec<PolicyError>| {
        if !authorities.contains(a.get_ref()) {
            errors.push(err(
                a.span(),
                format!("unknown authority `{}`", a.get_ref()),
            ));
        }
    };
    let check_types = |types: &[Spanned<String>], errors: &mut Vec<PolicyError>| {
        let mut out = BTreeSet::new();
        for t in types {
            match t.get_ref().parse::<MessageType>() {
                Ok(mt) => {
                    out.insert(mt);
                }
                Err(_) => errors.push(err(
                    t.span(),
                    format!("unknown message type `{}`", t.get_ref()),
                )),
            }
        }
        out
    };
    // a path must name a field of at least one of the types it applies to
    let check_path = |p: &Spanned<String>,
                      types: &BTreeSet<MessageType>,
                      errors: &mut Vec<PolicyError>|
     -> Option<Pattern> {
        let Some(pat) = parse_pattern(p.get_ref()) else {
            errors.push(err(
                p.span(),
                format!("`{}` is not a JSON pointer (it starts with /)", p.get_ref()),
            ));
            return None;
        };
        let all: Vec<MessageType> = if types.is_empty() {
            MessageType::ALL.to_vec()
        } else {
            types.iter().copied().collect()
        };
        if all.iter().any(|t| walk.at(*t, &pat).is_some()) {
            Some(pat)
        } else {
            errors.push(err(
                p.span(),
                format!(
                    "`{}` is not a field of the canonical body of {}",
                    p.get_ref(),
                    if types.is_empty() {
                        "any message type".to_string()
                    } else {
                        all.iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
            None
        }
    };
    let mut out = Disclosure::default();
    for p in &file.profile {
        check_id(&p.id, &mut errors);
        check_authority(&p.recipient, &mut errors);
        let types = check_types(&p.types, &mut errors);
        if p.types.is_empty() {
            errors.push(err(p.id.span(), "a profile names its `types`".into()));
        }
        let see: Vec<Pattern> = p
            .see
            .iter()
            .filter_map(|s| check_path(s, &types, &mut errors))
            .collect();
        let mut birth_date_only = Vec::new();
        for s in &p.birth_date_only {
            if let Some(pat) = check_path(s, &types, &mut errors) {
                if pat.last().map(String::as_str) != Some("cpr") {
                    errors.push(err(
                        s.span(),
                        format!("`{}` is not a CPR number", s.get_ref()),
                    ));
                }
                birth_date_only.push(pat);
            }
        }
        for t in types {
            let key = (p.recipient.get_ref().clone(), t);
            let profile = Profile {
                id: p.id.get_ref().clone(),
                see: see.clone(),
                birth_date_only: birth_date_only.clone(),
            };
            if let Some(other) = out.profiles.insert(key, profile) {
                errors.push(err(
                    p.id.span(),
                    format!(
                        "profile `{}` overlaps `{}` for {} and {}",
                        p.id.get_ref(),
                        other.id,
                        p.recipient.get_ref(),
                        t
                    ),
                ));
            }
        }
    }
    for r in &file.rule {
        check_id(&r.id, &mut errors);
        for a in r.recipients.iter().chain(&r.except) {
            check_authority(a, &mut errors);
        }
        let types = check_types(&r.types, &mut errors);
        let mut select = Vec::new();
        for s in &r.select {
            let Some(pat) = check_path(s, &types, &mut errors) else {
                continue;
            };
            // `when` names fields of the selected object, or of the object holding the value
            let Some(when) = &r.when else {
                select.push(pat);
                continue;
            };
            for field in when.get_ref().keys() {
                let found = MessageType::ALL.iter().any(|t| {
                    let Some(node) = walk.at(*t, &pat) else {
                        return false;
                    };
                    let obj = if SchemaWalk::is_object(node) {
                        Some(node)
                    } else {
                        walk.at(*t, &pat[..pat.len() - 1])
                    };
                    obj.and_then(|o| o.get("properties"))
                        .is_some_and(|props| props.get(field).is_some())
                });
                if !found {
                    errors.push(err(
                        when.span(),
                        format!(
                            "`when` names `{field}`, which `{}` does not have",
                            s.get_ref()
                        ),
                    ));
                }
            }
            select.push(pat);
        }
        let action = match (&r.remove, &r.replace) {
            (Some(x), None) if *x.get_ref() => Some(Action::Remove),
            (None, Some(x)) if x.get_ref() == "birth-date-only" => {
                if select
                    .iter()
                    .any(|p| p.last().map(String::as_str) != Some("cpr"))
                {
                    errors.push(err(
                        x.span(),
                        "`birth-date-only` applies to CPR numbers (`…/cpr`) only".into(),
                    ));
                }
                Some(Action::BirthDateOnly)
            }
            (None, Some(x)) => {
                errors.push(err(
                    x.span(),
                    format!("unknown replacement `{}` (birth-date-only)", x.get_ref()),
                ));
                None
            }
            _ => {
                errors.push(err(
                    r.id.span(),
                    "a rule says `remove = true` or `replace = \"birth-date-only\"`".into(),
                ));
                None
            }
        };
        if let Some(action) = action {
            out.rules.push(Rule {
                id: r.id.get_ref().clone(),
                recipients: r.recipients.iter().map(|a| a.get_ref().clone()).collect(),
                except: r.except.iter().map(|a| a.get_ref().clone()).collect(),
                unless_clearance: r.unless_clearance.clone(),
                types,
                select,
                when: r
                    .when
                    .as_ref()
                    .map(|w| w.get_ref().clone())
                    .unwrap_or_default(),
                action,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Does a pattern match a concrete path exactly?
fn matches(pattern: &[String], path: &[String]) -> bool {
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(path)
            .all(|(p, s)| p == s || (p == "*" && s.bytes().all(|b| b.is_ascii_digit())))
}

fn pointer(path: &[String]) -> String {
    let mut s = String::from("/body");
    for seg in path {
        s.push('/');
        s.push_str(&seg.replace('~', "~0").replace('/', "~1"));
    }
    s
}

/// Every concrete path in `v` that `pattern` matches.
fn expand(v: &Value, pattern: &[String], at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some((head, rest)) = pattern.split_first() else {
        out.push(at.clone());
        return;
    };
    match (head.as_str(), v) {
        ("*", Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                at.push(i.to_string());
                expand(item, rest, at, out);
                at.pop();
            }
        }
        (key, Value::Object(map)) => {
            if let Some(child) = map.get(key) {
                at.push(key.to_string());
                expand(child, rest, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match v {
        Value::Object(m) => m.get_mut(seg),
        Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Removes the value at `path`; false when there was none.
fn remove_at(body: &mut Value, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    match get_mut(body, parent) {
        Some(Value::Object(m)) => m.remove(last).is_some(),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// Replaces the CPR number at `path` (…/cpr) by the birth date it encodes.
fn birth_date_only(body: &mut Value, path: &[String]) -> bool {
    let Some((_, parent)) = path.split_last() else {
        return false;
    };
    let Some(Value::Object(person)) = get_mut(body, parent) else {
        return false;
    };
    let Some(cpr) = person
        .remove("cpr")
        .and_then(|v| v.as_str().and_then(|s| s.parse::<Cpr>().ok()))
    else {
        return false;
    };
    person
        .entry("birth_date")
        .or_insert_with(|| Value::String(cpr.birth_date().to_string()));
    true
}

/// Numeric segments compare as numbers, so that later array elements sort after earlier ones.
fn path_order(a: &[String], b: &[String]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x.parse::<usize>(), y.parse::<usize>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            _ => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

impl Disclosure {
    /// Profile and rule ids, for the admin API.
    pub fn entries(&self) -> Vec<Entry> {
        let mut seen = BTreeSet::new();
        let mut out: Vec<Entry> = self
            .profiles
            .values()
            .filter(|p| seen.insert(p.id.clone()))
            .map(|p| Entry {
                id: p.id.clone(),
                kind: "profile",
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.extend(self.rules.iter().map(|r| Entry {
            id: r.id.clone(),
            kind: "rule",
        }));
        out
    }

    /// What `recipient` (holding `clearances`) may see of a body of type `t`: the body is
    /// changed in place and every removal returned with its rule.
    pub fn apply(
        &self,
        recipient: &str,
        clearances: &[String],
        t: MessageType,
        body: &mut Value,
    ) -> Vec<Removal> {
        let mut removals = Vec::new();
        // rules decide on the body as accepted, before a profile hides the fields they test
        let mut actions: Vec<(Vec<String>, &Rule)> = Vec::new();
        for rule in self.rules.iter().filter(|r| {
            (r.recipients.is_empty() || r.recipients.contains(recipient))
                && !r.except.contains(recipient)
                && (r.types.is_empty() || r.types.contains(&t))
                && !r
                    .unless_clearance
                    .as_ref()
                    .is_some_and(|c| clearances.contains(c))
        }) {
            for pat in &rule.select {
                let mut found = Vec::new();
                expand(body, pat, &mut Vec::new(), &mut found);
                for path in found {
                    if rule.when.is_empty() || self.holds(body, &path, &rule.when) {
                        actions.push((path, rule));
                    }
                }
            }
        }
        if let Some(profile) = self.profiles.get(&(recipient.to_string(), t)) {
            let mut at = Vec::new();
            hide(body, profile, &mut at, &mut removals);
        }
        // deepest and last first, so that earlier paths stay valid
        actions.sort_by(|a, b| path_order(&b.0, &a.0));
        actions.dedup_by(|a, b| a.0 == b.0);
        for (path, rule) in actions {
            let (done, action) = match rule.action {
                Action::Remove => (remove_at(body, &path), "removed"),
                Action::BirthDateOnly => (birth_date_only(body, &path), "birth-date-only"),
            };
            if done {
                // what was removed inside a value that is now gone altogether is not listed
                let inside = format!("{}/", pointer(&path));
                removals.retain(|r| !r.path.starts_with(&inside));
                removals.push(Removal {
                    path: pointer(&path),
                    rule: rule.id.clone(),
                    action: action.into(),
                });
            }
        }
        removals.sort_by(|a, b| a.path.cmp(&b.path));
        removals
    }

    fn holds(&self, body: &Value, path: &[String], when: &BTreeMap<String, Vec<Value>>) -> bool {
        let obj = match get(body, path) {
            Some(Value::Object(m)) => Some(m),
            _ => match get(body, &path[..path.len().saturating_sub(1)]) {
                Some(Value::Object(m)) => Some(m),
                _ => None,
            },
        };
        let empty = Map::new();
        let obj = obj.unwrap_or(&empty);
        when.iter().all(|(field, allowed)| {
            obj.get(field)
                .is_some_and(|v| allowed.iter().any(|a| a == v))
        })
    }
}

/// Removes from `v` (at `at`) whatever the profile does not list.
fn hide(v: &mut Value, profile: &Profile, at: &mut Vec<String>, removals: &mut Vec<Removal>) {
    let keys: Vec<String> = match v {
        Value::Object(m) => m.keys().cloned().collect(),
        Value::Array(a) => (0..a.len()).map(|i| i.to_string()).collect(),
        _ => return,
    };
    let mut gone = Vec::new();
    for key in keys {
        at.push(key.clone());
        let covered = profile
            .see
            .iter()
            .any(|p| p.len() <= at.len() && matches(p, &at[..p.len()]));
        let above = profile
            .see
            .iter()
            .chain(&profile.birth_date_only)
            .any(|p| p.len() > at.len() && matches(&p[..at.len()], at));
        if covered {
        } else if above {
            if let Some(child) = get_mut(v, std::slice::from_ref(&key)) {
                hide(child, profile, at, removals);
            }
        } else if profile.birth_date_only.iter().any(|p| matches(p, at)) {
            gone.push((key.clone(), true));
        } else {
            gone.push((key.clone(), false));
        }
        at.pop();
    }
    for (key, to_birth_date) in gone.into_iter().rev() {
        at.push(key.clone());
        let path = [key];
        let done = if to_birth_date {
            birth_date_only(v, &path)
        } else {
            remove_at(v, &path)
        };
        if done {
            removals.push(Removal {
                path: pointer(at),
                rule: profile.id.clone(),
                action: if to_birth_date {
                    "birth-date-only"
                } else {
                    "removed"
                }
                .into(),
            });
        }
        at.pop();
    }
}
