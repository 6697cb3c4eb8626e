//! Databases of the machine's PostgreSQL for tests: each test makes its own and it is dropped
//! when the test is done with it, passed or failed.

use std::time::Duration;

/// Where the tests' PostgreSQL listens (trust authentication, user `postgres`).
pub const SERVER: &str = "postgresql://postgres@127.0.0.1:5432";

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_postgres::connect(&format!("{SERVER}/postgres"), tokio_postgres::NoTls),
    )
    .await
    .expect("PostgreSQL answers within 10 s")
    .unwrap_or_else(|e| panic!("PostgreSQL at {SERVER} (make test starts it): {e}"));
    tokio::spawn(conn);
    client
}

/// A database of one test's own, dropped with this value.
#[derive(Debug)]
pub struct Database {
    pub name: String,
}

impl Database {
    /// A new, empty database named after `tag` and a fresh id.
    pub async fn create(tag: &str) -> Self {
        let name = format!("jxg_test_{tag}_{}", uuid::Uuid::now_v7().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        Self { name }
    }

    /// Its libpq URL.
    pub fn url(&self) -> String {
        format!("{SERVER}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        // a runtime of its own: a drop may happen inside or outside of one
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                admin()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
