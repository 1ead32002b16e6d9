//! Webhook client. STUB.
use super::*;
#[derive(Debug, Default)]
pub struct Upstream;
impl Upstream {
    pub fn new() -> Self { Upstream }
    pub async fn send(&self, _s: &UpstreamSettings, _e: &WebhookEvent) -> Result<WebhookResponse, WebhookError> { unimplemented!() }
    pub async fn send_with_retries(&self, _s: &UpstreamSettings, _e: &WebhookEvent) -> Result<WebhookResponse, WebhookError> { unimplemented!() }
}
