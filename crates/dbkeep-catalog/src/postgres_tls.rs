//! The catalog connection's TLS, in libpq's words: `sslmode` (`disable`, `allow`, `prefer`,
//! `require`, `verify-ca`, `verify-full`) and `sslrootcert`, served by rustls with ring.

use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the connection is encrypted, in libpq's `sslmode` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    /// Never.
    Disable,
    /// When the server offers it (`allow` and `prefer`, the default), the certificate unchecked.
    Prefer,
    /// Always, the certificate unchecked (unless `sslrootcert` names the authorities).
    Require,
    /// Always, the certificate signed by a trusted authority.
    VerifyCa,
    /// Always, the certificate signed by a trusted authority and naming the host.
    VerifyFull,
}

/// The URL without `sslmode` and `sslrootcert` (the driver knows neither `verify-*` nor
/// `sslrootcert`), and their values. The other keys are kept as written.
pub(super) fn split(url: &url::Url) -> Result<(String, SslMode, Option<String>), String> {
    let mut mode = SslMode::Prefer;
    let mut root = None;
    let mut kept = Vec::new();
    for pair in url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value).decode_utf8_lossy();
        match percent_decode_str(key).decode_utf8_lossy().as_ref() {
            "sslmode" => {
                mode = match value.as_ref() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        ));
                    }
                }
            }
            "sslrootcert" => root = Some(value.into_owned()),
            _ => kept.push(pair),
        }
    }
    let mut url = url.clone();
    url.set_query(
        Some(&kept.join("&"))
            .filter(|q| !q.is_empty())
            .map(String::as_str),
    );
    Ok((url.to_string(), mode, root))
}

/// The connector for `mode`, trusting the certificates in `root` (a PEM file, or `system`) or
/// else the system's.
///
/// # Errors
/// When `root` cannot be read or holds no certificate, or the system has none.
pub(super) fn connector(mode: SslMode, root: Option<&str>) -> Result<MakeRustlsConnect, String> {
    // As libpq does: with the authorities named, `require` checks the certificate's signer.
    let mode = match (mode, root) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (mode, _) => mode,
    };
    Ok(MakeRustlsConnect::new(config(mode, root)?))
}

/// The rustls configuration for `mode`.
fn config(mode: SslMode, root: Option<&str>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider))),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots(root)?), provider)
                    .build()
                    .map_err(|e| format!("TLS: {e}"))?;
            if mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(verifier)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
            }
        }
    };
    Ok(config.with_no_client_auth())
}

/// The authorities `verify-ca` and `verify-full` trust.
fn roots(root: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match root {
        Some(path) if path != "system" => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
                store
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            }
            if store.is_empty() {
                return Err(format!("sslrootcert {path} holds no certificate"));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(
                    "sslmode verify-ca/verify-full: the system has no root certificates; name the server's authority with sslrootcert=FILE"
                        .into(),
                );
            }
        }
    }
    Ok(store)
}

/// Encryption without checking who answers: libpq's `prefer` and `require` (the handshake's
/// signatures are still checked).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's `verify-ca`: the certificate's chain is checked, the name it is for is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name: an error about the name means the chain held.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_from_the_url_and_the_rest_is_kept() {
        let url = url::Url::parse(
            "postgres://u@h:5/db?options=-c%20search_path%3Dx&sslmode=verify-full&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        let (rest, mode, root) = split(&url).unwrap();
        assert_eq!(rest, "postgres://u@h:5/db?options=-c%20search_path%3Dx");
        assert_eq!(
            (mode, root.as_deref()),
            (SslMode::VerifyFull, Some("/ca.pem"))
        );
        let (rest, mode, root) = split(&url::Url::parse("postgres://u@h/db").unwrap()).unwrap();
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://u@h/db", SslMode::Prefer, None)
        );
        let e = split(&url::Url::parse("postgres://h/db?sslmode=sometimes").unwrap());
        assert!(e.unwrap_err().contains("sslmode `sometimes`"));
    }
}
