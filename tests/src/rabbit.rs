//! RabbitMQ nodes of a test's own, for the tests that stop a broker or switch on its memory
//! alarm: the machine's RabbitMQ, started a second time under another node name, on ports and in
//! a folder of the test's own, so that every other test goes on with the shared broker meanwhile.
//! The node is stopped and its folder removed when the test is done with it, passed or failed.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::free_port;

/// A running RabbitMQ node of this test's own.
pub struct Rabbit {
    node: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Rabbit {
    /// Starts a node and waits until it takes connections.
    pub fn start() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let node = format!(
            "jxg-test-{}-{}@localhost",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().unwrap();
        // the server runs as the rabbitmq user where the tests run as root: it writes here
        allow_everyone(dir.path());
        let (port, dist) = (free_port(), free_port());
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .unwrap();
        // no plugins: the shared node's management and metrics ports stay its own
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
        let pid_file = dir.path().join("pid");
        let d = |name: &str| dir.path().join(name).display().to_string();
        let started = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_PID_FILE", d("pid"))
            .status()
            .expect("rabbitmq-server is installed (make test's broker phase says how)");
        assert!(started.success(), "rabbitmq-server -detached: {started}");
        let rabbit = Self { node, port, dir };
        rabbit.ctl(&["wait", &pid_file.display().to_string(), "--timeout", "120"]);
        rabbit.ctl(&["await_startup", "--timeout", "120"]);
        rabbit
    }

    /// The AMQP URL of this node, for the gateway and the test's clients.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `rabbitmqctl` against this node; panics naming the command when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        self.try_ctl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `rabbitmqctl` against this node: what it printed, or the command and its error.
    pub fn try_ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("rabbitmqctl")
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .output()
            .map_err(|e| format!("rabbitmqctl is installed with RabbitMQ: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "rabbitmqctl -n {} {args:?}: {}{}",
                self.node,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        if self.try_ctl(&["stop"]).is_err() {
            // a node that does not answer is ended by its process id
            let pid = std::fs::read_to_string(self.dir.path().join("pid"));
            if let Some(pid) = pid.ok().and_then(|p| p.trim().parse().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn allow_everyone(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}
