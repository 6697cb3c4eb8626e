//! The one place that reads client certificates. A leaf certificate becomes a [`Peer`] once per
//! connection, by its SAN URI `urn:jxg:authority:<id>` or `urn:jxg:admin:<role>`; nothing else
//! in the gateway sees a certificate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::dev::Extensions;
use x509_parser::extensions::GeneralName;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A registered authority.
    Authority(AuthorityId),
    /// An operator or auditor.
    Admin(AdminRole),
    /// A certificate of the sector CA that maps to no registered authority or role.
    Unmapped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRole {
    Operator,
    Auditor,
}

pub use jxg_core::registry::{AuthorityId, Registry};

/// Maps a leaf certificate (DER) to a peer.
pub fn identify(der: &[u8], registry: &Registry) -> Peer {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Peer::Unmapped;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Peer::Unmapped;
    };
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        })
        .collect();
    let mut found = uris.iter().filter_map(|u| {
        if let Some(id) = u.strip_prefix("urn:jxg:authority:") {
            registry.lookup(id).map(Peer::Authority)
        } else {
            match *u {
                "urn:jxg:admin:operator" => Some(Peer::Admin(AdminRole::Operator)),
                "urn:jxg:admin:auditor" => Some(Peer::Admin(AdminRole::Auditor)),
                _ => None,
            }
        }
    });
    match (found.next(), found.next()) {
        // a certificate maps to exactly one authority or role
        (Some(p), None) => p,
        _ => Peer::Unmapped,
    }
}

/// Open connections per certificate holder on one listener.
#[derive(Debug, Clone)]
pub struct Slots {
    open: Arc<Mutex<HashMap<String, usize>>>,
    limit: usize,
}

impl Slots {
    pub fn new(limit: usize) -> Self {
        Self {
            open: Default::default(),
            limit,
        }
    }

    fn take(&self, peer: &Peer) -> Slot {
        let key = match peer {
            Peer::Authority(id) => format!("authority:{id}"),
            Peer::Admin(AdminRole::Operator) => "admin:operator".into(),
            Peer::Admin(AdminRole::Auditor) => "admin:auditor".into(),
            Peer::Unmapped => "unmapped".into(),
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key.clone()).or_default();
        *n += 1;
        Slot {
            over: *n > self.limit,
            limit: self.limit,
            slots: self.clone(),
            key,
        }
    }
}

/// A connection's place among its holder's; given back when the connection closes.
#[derive(Debug)]
pub struct Slot {
    /// Past `limits.connections_per_peer`: its requests get 429 and it is closed.
    pub over: bool,
    pub limit: usize,
    slots: Slots,
    key: String,
}

impl Slot {
    /// Refuses a request on a connection over its holder's limit.
    pub fn check(req: &actix_web::HttpRequest) -> Result<(), crate::ingress::problem::Problem> {
        match req.conn_data::<Slot>() {
            Some(s) if s.over => Err(crate::ingress::problem::Problem::too_many_connections(
                s.limit,
            )),
            _ => Ok(()),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// `HttpServer::on_connect`: identify the peer of a new TLS connection once, and count it
/// against its holder's connections.
pub fn on_connect(
    registry: Arc<Registry>,
    slots: Slots,
) -> impl Fn(&dyn std::any::Any, &mut Extensions) + Send + Sync + Clone + 'static {
    move |conn, ext| {
        use actix_tls::accept::rustls_0_23::TlsStream;
        let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() else {
            return;
        };
        let (_, session) = tls.get_ref();
        let peer = match session.peer_certificates().and_then(|c| c.first()) {
            Some(leaf) => identify(leaf.as_ref(), &registry),
            None => Peer::Unmapped,
        };
        ext.insert(slots.take(&peer));
        ext.insert(peer);
    }
}
