//! TLS to a location server: verified against an extra CA file, refused without it, and skipped only
//! when the configuration says so explicitly (with a warning).

mod common;

use std::sync::Arc;

use common::{
    errors, find_json, macs, path_str, whereis, Office, SourceEntry, VARIANTS_AND_TIMEOUTS,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// A test CA and a server certificate for `localhost` / 127.0.0.1 signed by it.
struct Pki {
    ca_pem: String,
    server: Arc<ServerConfig>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "whereis test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let leaf =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();

    let server =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

/// Terminates TLS on a loopback port and forwards each connection to `backend` (the simulator).
async fn tls_front(pki: &Pki, backend: std::net::SocketAddr) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(Arc::clone(&pki.server));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake is the point of some tests: just drop the connection.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

async fn office_behind_tls(extra: &str, file: &str) -> (Office, std::path::PathBuf) {
    let office = Office::start().await;
    let pki = pki();
    std::fs::write(office.dir.path().join("corp-ca.pem"), &pki.ca_pem).unwrap();
    let backend = office.sim.server("cmx-a").unwrap().addr();
    let port = tls_front(&pki, backend).await;
    let source = SourceEntry {
        url: format!("https://localhost:{port}"),
        extra: extra.to_owned(),
        ..office.source("cmx-a")
    };
    let config = office.config(file, VARIANTS_AND_TIMEOUTS, &[source]);
    (office, config)
}

#[tokio::test(flavor = "multi_thread")]
async fn extra_ca_file_is_trusted() {
    let (_office, config) = office_behind_tls("ca_file = \"corp-ca.pem\"", "ca.toml").await;
    let (code, doc) = find_json("jdoe", &config).await;
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(macs(&doc), ["00:11:22:33:44:55"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_issuer_is_refused_by_default() {
    let (_office, config) = office_behind_tls("", "no-ca.toml").await;
    let (code, doc) = find_json("jdoe", &config).await;
    assert_eq!(code, 2, "{doc:#}");
    let errors = errors(&doc);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("cannot connect"), "{errors:?}");
    assert!(
        errors[0].1.to_lowercase().contains("certificate"),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skipping_verification_is_explicit_and_warned_about() {
    let (_office, config) =
        office_behind_tls("insecure_skip_tls_verify = true", "insecure.toml").await;
    let out = whereis(&["find", "jdoe", "--config", path_str(&config), "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLS certificate verification is OFF"),
        "{stderr}"
    );
    assert!(stderr.contains("cmx-a"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_ca_file_is_a_config_error() {
    let (_office, config) = office_behind_tls("ca_file = \"missing.pem\"", "missing-ca.toml").await;
    let out = whereis(&["find", "jdoe", "--config", path_str(&config)]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ca_file") && stderr.contains("missing.pem"),
        "{stderr}"
    );
}
