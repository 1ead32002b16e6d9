//! HMAC-SHA256 for the webhook `ce-signature` header (token signatures are jsonwebtoken's).
//!
//! It uses the access key exactly as written in the connection string, as tokens do: its UTF-8
//! bytes are the HMAC key, never a base64 decoding of it (docs/protocol.md §6, §10.1). The webhook side
//! ([`crate::upstream`]) calls [`ce_signature`].

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Raw HMAC-SHA256 of `message` keyed by the UTF-8 bytes of `key`.
pub fn hmac_sha256(key: &str, message: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn keyed(key: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length")
}

/// The `ce-signature` header value for a webhook call from `connection_id`:
/// `sha256=<lowercase hex HMAC-SHA256(key, connectionId)>` for each key, in order, joined by `,`
/// (docs/protocol.md §6). An empty key list gives an empty string.
pub fn ce_signature(keys: &[String], connection_id: &str) -> String {
    keys.iter()
        .map(|key| {
            format!(
                "sha256={}",
                hex::encode(hmac_sha256(key, connection_id.as_bytes()))
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ce_signature_vector_functions_test() {
        // docs/protocol.md §6, from the Functions extension tests (§0 F6).
        let keys = vec!["7aab239577fd4f24bc919802fb629f5f".to_string()];
        assert_eq!(
            ce_signature(&keys, "0f9c97a2f0bf4706afe87a14e0797b11"),
            "sha256=7767effcb3946f3e1de039df4b986ef02c110b1469d02c0a06f41b3b727ab561"
        );
    }

    #[test]
    fn ce_signature_vector_dev_key() {
        let keys = vec![super::super::DEV_ACCESS_KEY.to_string()];
        assert_eq!(
            ce_signature(&keys, "conn1"),
            "sha256=8de7281e588e23b0a30a7180ffa240257b8176e983004c240c9f3f7a7233c993"
        );
    }

    #[test]
    fn ce_signature_several_keys_in_order() {
        let keys = vec![
            "7aab239577fd4f24bc919802fb629f5f".to_string(),
            super::super::DEV_ACCESS_KEY.to_string(),
        ];
        let sig = ce_signature(&keys, "conn1");
        let parts: Vec<&str> = sig.split(',').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[1],
            "sha256=8de7281e588e23b0a30a7180ffa240257b8176e983004c240c9f3f7a7233c993"
        );
        assert!(parts[0].starts_with("sha256=") && parts[0].len() == 7 + 64);
        assert_eq!(ce_signature(&[], "conn1"), "");
    }
}
