//! The HTTP client for platform calls: its options (`--ca-file`) and its trust roots. The
//! calls themselves and their one retry loop are in [`super::call`].
//!
//! Plain hyper HTTP/1.1 over tokio, one connection per attempt (a handful of calls per
//! deployment need no pool). TLS is rustls (ring) with the embedded webpki roots, since the
//! image has no CA bundle, plus the roots of `--ca-file` (for a local TLS platform in tests).
//! Names resolve through [`super::dns::Resolver`] (hickory, no glibc NSS: the binary is
//! static) to every address, each tried in turn within the attempt; IP literals are used as
//! they are. This client never calls `getaddrinfo`, which keeps glibc's NSS, `dlopen` and
//! iconv machinery out of the static binary. Redirects are not followed: the token is for the
//! URL the platform gave and for no other.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clap::Args;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::TlsConnector;

use super::dns::Resolver;

/// How platform calls reach the platform.
#[derive(Debug, Clone, Default, Args)]
pub struct HttpOptions {
    /// A PEM file of extra CA certificates to trust besides the embedded web roots.
    // The names are CA_FILE_FLAG and CA_FILE_VARIABLE below (an attribute takes no const).
    #[arg(long, env = "EDGEGAP_AGENT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The value of `--ca-file` came from `EDGEGAP_AGENT_CA_FILE` (set by the parser), so
    /// an error about the file names the variable too.
    #[arg(skip)]
    pub ca_file_from_env: bool,
}

/// Errors name the option as the user gave it: `--ca-file PATH`, and where the value came
/// from the environment, the variable too (see [`ca_file_option`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{option}: cannot read it: {source}")]
    ReadCa {
        option: String,
        source: std::io::Error,
    },
    #[error("{option}: expected PEM certificates ({detail})")]
    BadCa { option: String, detail: String },
}

const CA_FILE_FLAG: &str = "--ca-file";
const CA_FILE_VARIABLE: &str = "EDGEGAP_AGENT_CA_FILE";

/// `--ca-file PATH`, followed by the variable's name when the value came from
/// `EDGEGAP_AGENT_CA_FILE`: a user who never typed `--ca-file` must learn which setting to fix.
fn ca_file_option(path: &Path, from_env: bool) -> String {
    let shown = format!("{CA_FILE_FLAG} {}", path.display());
    if from_env {
        format!("{shown} (the value came from the environment variable {CA_FILE_VARIABLE})")
    } else {
        shown
    }
}

/// The client every platform call uses; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    /// The TLS set-up, built at the first HTTPS call rather than at start: a match makes its
    /// platform calls at its end (a local run none), and building it (the web roots, the
    /// verifier) at start would be time the game waits before it is started.
    tls: OnceLock<Result<TlsConnector, String>>,
    /// The roots of `--ca-file`, read and checked at start (a bad file is exit 64).
    extra_roots: RootCertStore,
    pub(super) resolver: Resolver,
}

impl HttpClient {
    pub(super) fn tls(&self) -> Result<&TlsConnector, String> {
        self.tls
            .get_or_init(|| {
                let mut roots =
                    RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                roots.roots.extend(self.extra_roots.roots.iter().cloned());
                super::tls::client_config(roots)
                    .map(|config| TlsConnector::from(Arc::new(config)))
                    .map_err(|e| format!("tls error: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

/// Builds the client, resolving names with the system's `/etc/hosts` and `/etc/resolv.conf`.
pub fn build_client(options: &HttpOptions) -> Result<HttpClient, ClientError> {
    build_client_with_resolver(options, Resolver::system())
}

/// As [`build_client`], with the resolver given (tests pin names to 127.0.0.1).
pub fn build_client_with_resolver(
    options: &HttpOptions,
    resolver: Resolver,
) -> Result<HttpClient, ClientError> {
    let mut extra_roots = RootCertStore::empty();
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa {
            option: ca_file_option(path, options.ca_file_from_env),
            source,
        })?;
        let bad = |detail: String| ClientError::BadCa {
            option: ca_file_option(path, options.ca_file_from_env),
            detail,
        };
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|e| bad(e.to_string()))?;
            extra_roots
                .add(certificate)
                .map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no certificate found".to_owned()));
        }
    }
    Ok(HttpClient {
        tls: OnceLock::new(),
        extra_roots,
        resolver,
    })
}
