//! TLS trust for devices on the LAN that present their own certificates (the
//! GX's broker, a HomeWizard v2 meter). The PEM file the owner gives holds
//! either the device's own certificate, pinned (the device must present
//! exactly it, whoever signed it and whatever name it is reached by), or a
//! CA (the chain is checked, and the name where the device's certificates
//! carry one).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, ensure};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// Whether a CA-signed certificate must also name the address it was
/// reached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    Checked,
    /// HomeWizard meters are reached by IP and their certificates name a
    /// serial number.
    Ignored,
}

/// Trusts the certificates in the PEM file at `path` (`key` names the
/// option or config key in messages).
pub fn trusting(key: &str, path: &Path, names: Names) -> Result<ClientConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .map_err(|e| anyhow!("{key} {}: {e}", path.display()))?;
    ensure!(
        !certs.is_empty(),
        "{key} {}: no certificate in it",
        path.display()
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
    let webpki = (added > 0)
        .then(|| {
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .ok()
        })
        .flatten();
    config(
        provider.clone(),
        Verifier {
            pinned: certs,
            webpki,
            names,
            insecure: false,
            algorithms: provider.signature_verification_algorithms,
        },
    )
}

/// Trusts whatever the device presents (the owner asked for it by name).
pub fn trusting_anything() -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    config(
        provider.clone(),
        Verifier {
            pinned: Vec::new(),
            webpki: None,
            names: Names::Ignored,
            insecure: true,
            algorithms: provider.signature_verification_algorithms,
        },
    )
}

fn config(
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: Verifier,
) -> Result<ClientConfig> {
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

#[derive(Debug)]
struct Verifier {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    names: Names,
    insecure: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.insecure
            || self
                .pinned
                .iter()
                .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(webpki) = &self.webpki else {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ));
        };
        // webpki checks the name only after the chain, so a name error
        // means the chain is good.
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.names == Names::Ignored => Ok(ServerCertVerified::assertion()),
            verdict => verdict,
        }
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
