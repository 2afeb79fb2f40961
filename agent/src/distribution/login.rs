//! Checking credentials against a registry (`berthctl login`): `GET /v2/` answered with
//! them, through the registry's token server when it has one.

use reqwest::Method;

use super::auth::{Credentials, Scopes};
use super::error::{Error, Result};
use super::registry::{RegistryClient, Req, status_error};

impl RegistryClient {
    /// Succeeds when `registry` accepts `credentials`. Mirrors are not asked.
    pub async fn login(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let eps = self.endpoints(registry, false)?;
        let ep = eps
            .last()
            .ok_or_else(|| Error::Protocol(format!("no endpoint for registry {registry}")))?;
        let req = Req::new(Method::GET, ep.url("")?);
        let resp = match self
            .send_retrying(ep, &Scopes::default(), Some(credentials), &req)
            .await
        {
            Ok(r) => r,
            Err(Error::Unauthorized {
                registry, detail, ..
            }) => {
                return Err(Error::Unauthorized {
                    action: "login".into(),
                    registry,
                    detail,
                });
            }
            Err(e) => return Err(e),
        };
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(ep, &req, resp, &format!("login to {registry}")).await)
        }
    }
}
