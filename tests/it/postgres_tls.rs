//! TLS to PostgreSQL per `sslmode`, against a real server listening on
//! 127.0.0.1 with TLS only (`hostssl`, scram) and a self-signed server
//! certificate made here: `verify-full` and `verify-ca` trust it with its
//! certificate as `sslrootcert` and refuse it with another; `require` and
//! `prefer` connect without verifying; `prefer` falls back to plain text
//! after a failed handshake, and plain text (as `disable`) is refused by
//! the server. No error shows the password.

use std::path::Path;

use runway_host::store::{DatabaseUrl, DatasetStore, StoreError};
use runway_tests::postgres::{PASSWORD, Server};

/// A self-signed server certificate for 127.0.0.1, as `NAME.pem` and
/// `NAME.key` in `dir`.
fn certificate(dir: &Path, name: &str) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    runway_tests::self_signed(dir, &cert, &key, &format!("runway postgres test {name}"));
}

fn open(url: &str) -> Result<DatasetStore, StoreError> {
    let root = tempfile::tempdir().unwrap();
    DatasetStore::open_postgres(&DatabaseUrl::new(url), root.path())
}

#[test]
fn tls_per_sslmode_against_a_tls_only_server() {
    let certs = tempfile::tempdir().unwrap();
    certificate(certs.path(), "server");
    certificate(certs.path(), "other");
    let server = Server::start_tls(
        &certs.path().join("server.pem"),
        &certs.path().join("server.key"),
    );
    let db = server.database();
    let root = |name: &str| certs.path().join(name).display().to_string();
    let url = |query: &str| db.tcp_url(PASSWORD, query);
    // Whether every session of the store on this database is encrypted
    // ("t"), as the server sees them.
    let encrypted = || {
        db.psql(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
             WHERE a.usename = 'runway_secret' AND a.datname = current_database()",
        )
    };

    // Verified against its own certificate: connects, and the session
    // is encrypted as the server sees it.
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let store = open(&url(&format!(
            "sslmode={mode}&sslrootcert={}",
            root("server.pem")
        )))
        .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(store.fence("d").unwrap(), 0, "{mode}");
        assert_eq!(encrypted(), "t", "{mode}");
        drop(store);
    }
    // `require` and `prefer` without a root certificate: encrypted, not
    // verified (libpq's rule).
    for mode in ["require", "prefer"] {
        let store =
            open(&url(&format!("sslmode={mode}"))).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(store.fence("d").unwrap(), 0, "{mode}");
        assert_eq!(encrypted(), "t", "{mode}");
        drop(store);
    }

    // Another root: refused, saying why, without the password. The same
    // with `require` given that root (a root certificate makes libpq's
    // `require` verify).
    for mode in ["verify-full", "verify-ca", "require"] {
        let err = open(&url(&format!(
            "sslmode={mode}&sslrootcert={}",
            root("other.pem")
        )))
        .err()
        .unwrap_or_else(|| panic!("{mode} with another root connected"));
        let text = err.to_string();
        assert!(
            text.contains("invalid peer certificate: UnknownIssuer")
                && text.contains(&format!(
                    "verified against sslrootcert {}",
                    root("other.pem")
                ))
                && text.contains(&db.name),
            "{mode}: {text}"
        );
        assert!(!text.contains(PASSWORD) && !format!("{err:?}").contains(PASSWORD));
    }
    // `prefer` after a failed handshake tries plain text, as libpq does:
    // this server refuses that.
    let err = open(&url(&format!(
        "sslmode=prefer&sslrootcert={}",
        root("other.pem")
    )))
    .err()
    .expect("refused");
    assert!(err.to_string().contains("no encryption"), "{err}");
    // The webpki roots do not hold a self-signed certificate.
    let err = open(&url("sslmode=verify-full")).err().expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("UnknownIssuer") && text.contains("verified against the webpki roots"),
        "{text}"
    );

    // Plain text: the server has no line for it.
    let err = open(&url("sslmode=disable")).err().expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("no pg_hba.conf entry") && text.contains("no encryption"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
}
