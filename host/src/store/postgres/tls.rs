//! TLS to PostgreSQL with rustls, verifying as libpq does per `sslmode`:
//!
//! | sslmode | without `sslrootcert` | with `sslrootcert` |
//! |---|---|---|
//! | `prefer`, `require` | encrypted, the certificate not verified | verified as `verify-ca` |
//! | `verify-ca` | the chain against the webpki roots | the chain against the file's |
//! | `verify-full` | chain and host name, webpki roots | chain and host name, the file's |
//!
//! (`disable` and Unix sockets never get here.) `sslrootcert=system`
//! means the webpki roots and, as in libpq, `verify-full`.
//!
//! [`Tls`] is tokio-postgres's `MakeTlsConnect` over tokio-rustls; a
//! failed handshake is a [`HandshakeFailed`], which `prefer` falls back
//! from to plain text (the caller looks for it in the error's source).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Nothing (libpq's `prefer`/`require` without a root certificate).
    Nothing,
    /// The chain up to a trusted root, not the host name.
    Ca,
    /// The chain and the host name.
    Full,
}

/// Where the trusted roots come from.
pub enum Roots<'a> {
    /// The webpki (Mozilla) roots.
    Webpki,
    /// The certificates of a PEM file (its bytes, and its path for errors).
    Pem(&'a [u8], &'a str),
}

/// A TLS connector for tokio-postgres.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    /// What the certificate is checked against, for a failed handshake.
    checked: Arc<str>,
}

impl Tls {
    /// A connector checking `verify` against `roots`, or why not.
    pub fn new(verify: Verify, roots: Roots<'_>) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = RootCertStore::empty();
        let checked = match (verify, &roots) {
            (Verify::Nothing, _) => "the certificate not verified".to_string(),
            (_, Roots::Webpki) => "verified against the webpki roots".to_string(),
            (_, Roots::Pem(_, path)) => format!("verified against sslrootcert {path}"),
        };
        match roots {
            Roots::Webpki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Roots::Pem(pem, path) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
                    store
                        .add(cert)
                        .map_err(|e| format!("sslrootcert {path}: {e}"))?;
                }
                if store.is_empty() {
                    return Err(format!("sslrootcert {path}: no certificate in it"));
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let algorithms = provider.signature_verification_algorithms;
        let config =
            match verify {
                Verify::Full => {
                    let verifier =
                        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                            .build()
                            .map_err(|e| e.to_string())?;
                    builder.with_webpki_verifier(verifier)
                }
                Verify::Ca | Verify::Nothing => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Verifier {
                        roots: (verify == Verify::Ca).then(|| Arc::new(store)),
                        algorithms,
                    })),
            };
        Ok(Tls {
            config: Arc::new(config.with_no_client_auth()),
            checked: checked.into(),
        })
    }
}

/// The handshake failed (or the host name was no server name): `prefer`
/// tries plain text after it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandshakeFailed(String);

impl<S> MakeTlsConnect<S> for Tls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = HandshakeFailed;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, HandshakeFailed> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| HandshakeFailed(format!("{domain:?} is no TLS server name: {e}")))?;
        Ok(Connect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
            checked: self.checked.clone(),
        })
    }
}

/// One connection's handshake.
pub struct Connect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    checked: Arc<str>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = HandshakeFailed;
    type Future = Pin<Box<dyn Future<Output = Result<Stream<S>, HandshakeFailed>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(Stream)
                .map_err(|e| HandshakeFailed(format!("{e} ({})", self.checked)))
        })
    }
}

/// A connection over TLS.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (as libpq's default `prefer` does
        // when the server offers none); the TLS session is verified or
        // not as the sslmode says.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `verify-ca` (with `roots`): the chain up to a trusted root, any host
/// name; `prefer`/`require` without a root certificate (no `roots`): the
/// certificate taken as it is. The handshake's signatures are checked
/// either way.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
