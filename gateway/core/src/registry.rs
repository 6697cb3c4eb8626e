//! The authorities as the request path uses them: compiled once from the validated
//! configuration, so that a request never looks an authority or a format up by its name.
//! A listener maps a client certificate to an [`AuthorityId`] once per connection; the
//! pipeline finds each routed recipient's [`Entry`] — its adapter, clearances and way of
//! delivery — by [`Recipient`], in a table.

use std::sync::Arc;

use jxg_adapters::registry::Adapter;

use crate::config::{Config, Delivery};
use crate::routing::Recipient;

/// A registered authority's id (`police`, `prosecution`, …): its place in the registry and its
/// name. Two ids are equal when they name the same authority.
#[derive(Clone)]
pub struct AuthorityId {
    index: usize,
    name: Arc<str>,
}

impl AuthorityId {
    pub fn as_str(&self) -> &str {
        &self.name
    }
    /// Its place in the registry (`0..entries().len()`), for tables indexed by authority.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl std::ops::Deref for AuthorityId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl PartialEq for AuthorityId {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.name == other.name
    }
}
impl Eq for AuthorityId {}

impl std::hash::Hash for AuthorityId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.index.hash(state);
    }
}

impl std::fmt::Debug for AuthorityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl std::fmt::Display for AuthorityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// One registered authority, compiled.
pub struct Entry {
    pub id: AuthorityId,
    /// The adapter of its format.
    pub adapter: &'static dyn Adapter,
    /// Clearances it holds (`protected-address`, `secret`).
    pub clearances: Vec<String>,
    /// How it receives messages.
    pub delivery: Delivery,
    /// Where documents are pushed to, for push delivery.
    pub webhook: Option<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("format", &self.adapter.name())
            .field("delivery", &self.delivery)
            .finish()
    }
}

/// The registered authorities.
#[derive(Debug)]
pub struct Registry {
    entries: Vec<Entry>,
    /// The entry of each recipient the routing names, when one is registered.
    routed: [Option<usize>; Recipient::ALL.len()],
}

/// A configuration the registry cannot be made from (`Config::validate` refuses it first).
#[derive(Debug, Clone, thiserror::Error)]
#[error("authority {authority}: no adapter for format {format}")]
pub struct UnknownFormat {
    pub authority: String,
    pub format: String,
}

impl Registry {
    /// Compiles the authorities of a validated configuration.
    pub fn compile(config: &Config) -> Result<Self, UnknownFormat> {
        let mut entries = Vec::with_capacity(config.authorities.len());
        for (index, a) in config.authorities.iter().enumerate() {
            let adapter = jxg_adapters::registry::get(&a.format).ok_or_else(|| UnknownFormat {
                authority: a.id.clone(),
                format: a.format.clone(),
            })?;
            entries.push(Entry {
                id: AuthorityId {
                    index,
                    name: a.id.as_str().into(),
                },
                adapter,
                clearances: a.clearances.clone(),
                delivery: a.delivery,
                webhook: a.webhook.clone(),
            });
        }
        let routed = Recipient::ALL.map(|r| entries.iter().position(|e| &*e.id == r.as_str()));
        Ok(Self { entries, routed })
    }

    /// The id of the authority named `name` (a certificate's, once per connection; the CLI's).
    pub fn lookup(&self, name: &str) -> Option<AuthorityId> {
        self.entries
            .iter()
            .find(|e| &*e.id == name)
            .map(|e| e.id.clone())
    }

    /// The entry of an id this registry gave.
    pub fn entry(&self, id: &AuthorityId) -> &Entry {
        &self.entries[id.index]
    }

    /// The registered authority the routing names, if there is one.
    pub fn routed(&self, r: Recipient) -> Option<&Entry> {
        self.routed[r as usize].map(|i| &self.entries[i])
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_authorities_compile_with_their_adapters_and_every_routed_recipient() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../gateway.toml");
        let config = Config::load(&path).unwrap();
        let r = Registry::compile(&config).unwrap();
        let police = r.lookup("police").expect("police is registered");
        assert_eq!(r.entry(&police).adapter.name(), "police-json");
        assert_eq!(r.routed(Recipient::Police).unwrap().id, police);
        assert_eq!(
            r.routed(Recipient::Prosecution).unwrap().adapter.name(),
            "prosecution-flat"
        );
        for rec in Recipient::ALL {
            assert_eq!(&*r.routed(rec).unwrap().id, rec.as_str());
        }
        assert!(r.lookup("nobody").is_none());
    }
}
