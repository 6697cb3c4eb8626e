//! Databases of the machine's PostgreSQL for tests: each test makes its own and it is dropped
//! when the test is done with it, passed or failed.

use std::time::Duration;

/// Where the tests' PostgreSQL listens (trust authentication, user `postgres`).
pub const SERVER: &str = "postgresql://postgres@127.0.0.1:5432";

async fn admin_of(server: &str) -> Result<tokio_postgres::Client, String> {
    let server = server.trim_end_matches('/');
    let (client, conn) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls),
    )
    .await
    .map_err(|_| format!("PostgreSQL at {server} did not answer within 10 s"))?
    .map_err(|e| format!("PostgreSQL at {server} (make test starts it): {e}"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// A database of one test's (or one bench run's) own, dropped with this value.
#[derive(Debug)]
pub struct Database {
    pub name: String,
    server: String,
}

impl Database {
    /// A new, empty database on the tests' server, named after `tag` and a fresh id.
    pub async fn create(tag: &str) -> Self {
        Self::create_on(SERVER, tag)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A new, empty database on `server` (`postgresql://user@host:port`, no database).
    pub async fn create_on(server: &str, tag: &str) -> Result<Self, String> {
        let name = format!("jxg_test_{tag}_{}", uuid::Uuid::now_v7().simple());
        admin_of(server)
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(Self {
            name,
            server: server.trim_end_matches('/').to_string(),
        })
    }

    /// Its libpq URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// Runs `sql` in this database (as the server's superuser).
    pub async fn execute(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        tokio::spawn(conn);
        client
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (name, server) = (self.name.clone(), self.server.clone());
        // a runtime of its own: a drop may happen inside or outside of one
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                admin_of(&server)
                    .await?
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// A PostgreSQL 15 cluster of one test's own, run as the `postgres` user (PostgreSQL refuses to
/// run as root) in a folder that user owns, on a port of its own; stopped and removed when
/// dropped.
#[derive(Debug)]
pub struct Cluster {
    pub port: u16,
    dir: std::path::PathBuf,
}

const BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(program: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{BIN}/{program}")])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("runuser {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Cluster {
    fn folder() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("jxg-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir(&dir).unwrap();
        let out = std::process::Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(out.success(), "chown postgres {}", dir.display());
        dir
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn configure(&self, lines: &str) {
        let conf = self.dir.join("data/postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n{lines}\n",
            self.port,
            self.dir.display()
        ));
        std::fs::write(&conf, text).unwrap();
    }

    fn start(&self) {
        let log = self.dir.join("log").display().to_string();
        as_postgres("pg_ctl", &["-D", &self.data(), "-l", &log, "-w", "start"]);
    }

    /// A primary whose commits wait for the standby named `standby`.
    pub fn primary() -> Self {
        let me = Self {
            port: crate::free_port(),
            dir: Self::folder(),
        };
        as_postgres(
            "initdb",
            &[
                "-D",
                &me.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        me.configure("synchronous_standby_names = 'standby'\nsynchronous_commit = on");
        me.start();
        me
    }

    /// A streaming standby of `primary`, synchronous (its application name is `standby`).
    pub fn standby_of(primary: &Cluster) -> Self {
        let me = Self {
            port: crate::free_port(),
            dir: Self::folder(),
        };
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres application_name=standby",
            primary.port
        );
        as_postgres(
            "pg_basebackup",
            &["-d", &conninfo, "-D", &me.data(), "-R", "-X", "stream"],
        );
        // once promoted it waits for no standby of its own
        me.configure("synchronous_standby_names = ''");
        me.start();
        me
    }

    /// A URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` (statements without parameters) on database `db` of this cluster.
    pub async fn execute(&self, db: &str, sql: &str) {
        let (client, conn) = tokio_postgres::connect(&self.url(db), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Whether the standby named `standby` is streaming synchronously from this primary.
    pub async fn standby_in_sync(&self) -> bool {
        let (client, conn) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .query(
                "SELECT 1 FROM pg_stat_replication WHERE application_name = 'standby' \
                 AND sync_state = 'sync' AND state = 'streaming'",
                &[],
            )
            .await
            .map(|r| !r.is_empty())
            .unwrap_or(false)
    }

    /// Stops it at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn crash(&self) {
        as_postgres("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }

    /// Makes a standby the primary.
    pub fn promote(&self) {
        as_postgres("pg_ctl", &["-D", &self.data(), "-w", "promote"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{BIN}/pg_ctl")])
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
