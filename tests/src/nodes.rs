//! Several gateway nodes of one home sharing one PostgreSQL database: each node a `jxg serve`
//! of its own configuration (`node-N.toml`: the home's, with `store.engine = "postgres"`, the
//! database's URL and `store.node = "gw-N"`), on ports of its own. They share the home's
//! certificates and signing key, as the nodes behind one load balancer do.

use crate::{Gateway, Home, jxg_bin};

pub struct Nodes {
    /// `Some` while the node runs.
    pub running: Vec<Option<Gateway>>,
    home: std::path::PathBuf,
}

impl Nodes {
    /// Writes the configurations of `n` nodes on `url` (none started).
    pub fn new(home: &Home, url: &str, n: usize) -> Self {
        let base = std::fs::read_to_string(home.path().join("gateway.toml")).unwrap();
        for i in 1..=n {
            let cfg = base.replacen(
                "[store]\n",
                &format!("[store]\nengine = \"postgres\"\nurl = \"{url}\"\nnode = \"gw-{i}\"\n"),
                1,
            );
            std::fs::write(home.path().join(format!("node-{i}.toml")), cfg).unwrap();
        }
        Self {
            running: (0..n).map(|_| None).collect(),
            home: home.path().to_path_buf(),
        }
    }

    /// Starts node `i` (0-based), waiting for it to listen.
    pub fn start(&mut self, i: usize) -> &Gateway {
        let cfg = format!("node-{}.toml", i + 1);
        let gw = Gateway::spawn(
            &jxg_bin(),
            &["serve", "--config", &cfg],
            &self.home,
            &[],
            false,
        )
        .unwrap_or_else(|e| panic!("node gw-{} did not start: {e}", i + 1));
        self.running[i] = Some(gw);
        self.running[i].as_ref().unwrap()
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for i in 0..self.running.len() {
            self.start(i);
        }
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut gw) = self.running[i].take() {
            gw.kill();
        }
    }

    /// The running nodes.
    pub fn live(&self) -> Vec<&Gateway> {
        self.running.iter().flatten().collect()
    }

    /// Node `i`, which must be running.
    pub fn node(&self, i: usize) -> &Gateway {
        self.running[i].as_ref().expect("the node runs")
    }

    /// Stops every running node with SIGTERM, each having to exit cleanly.
    pub fn terminate_all(&mut self) {
        for gw in self.running.iter_mut() {
            if let Some(mut gw) = gw.take() {
                gw.stop_cleanly();
            }
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for i in 0..self.running.len() {
            self.kill(i);
        }
    }
}
