//! The one TLS configuration of every connection: rustls with the `ring` provider, the
//! platform's certificate verifier with the `--ca-cert` roots merged in, HTTP/1.1 by ALPN.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// Certificates trusted in addition to the platform's roots, e.g. a TLS-inspecting proxy's CA.
#[derive(Clone, Default)]
pub struct TrustRoots {
    certs: Vec<CertificateDer<'static>>,
    sources: Vec<String>,
}

impl TrustRoots {
    /// Reads every certificate of a PEM file (a bundle is fine).
    pub fn add_pem_file(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read --ca-cert {shown}: {e}"))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                anyhow::anyhow!("--ca-cert {shown} is not a PEM certificate file ({e}): give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)")
            })?;
        if certs.is_empty() {
            anyhow::bail!(
                "--ca-cert {shown} holds no certificate: give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)"
            );
        }
        self.certs.extend(certs);
        self.sources.push(shown.to_string());
        Ok(())
    }

    /// The TLS settings of every connection: TLS 1.2 and 1.3, certificates checked by the
    /// platform's verifier (its trust store, revocation where the platform does it) with these
    /// extra roots merged in, ALPN offering HTTP/1.1 only.
    pub(crate) fn client_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = if self.certs.is_empty() {
            rustls_platform_verifier::Verifier::new(provider.clone())
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.certs.iter().cloned(),
                provider.clone(),
            )
        }
        .map_err(|e| anyhow::anyhow!("cannot set up TLS certificate verification: {e}"))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl std::fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustRoots")
            .field("certificates", &self.certs.len())
            .field("from", &self.sources)
            .finish()
    }
}
