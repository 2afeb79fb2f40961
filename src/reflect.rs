//! Every message of berth's API described at run time, so that clients can print an
//! `Any` (an event payload, say) as JSON without knowing its type in advance.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use prost_types::Any;

static POOL: OnceLock<DescriptorPool> = OnceLock::new();

/// The descriptors of every .proto file berth-api was built from.
pub fn pool() -> &'static DescriptorPool {
    POOL.get_or_init(|| {
        DescriptorPool::decode(
            include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin")).as_slice(),
        )
        .expect("embedded descriptors decode")
    })
}

/// Decodes an `Any` whose type URL is a message full name (bare, or after a `/`) and
/// renders it as JSON with the .proto field names, as Go's encoding of these types does.
/// `None` when the type is unknown or the bytes do not decode.
pub fn any_to_json(any: &Any) -> Option<serde_json::Value> {
    let name = any.type_url.rsplit('/').next().unwrap_or(&any.type_url);
    let desc = pool().get_message_by_name(name)?;
    let msg = DynamicMessage::decode(desc, any.value.as_slice()).ok()?;
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    msg.serialize_with_options(&mut ser, &opts).ok()?;
    serde_json::from_slice(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::events::TaskExit;

    #[test]
    fn event_as_json() {
        let any = crate::any::pack(&TaskExit {
            container_id: "c1".into(),
            exit_status: 3,
            ..Default::default()
        });
        let json = any_to_json(&any).unwrap();
        assert_eq!(json["container_id"], "c1");
        assert_eq!(json["exit_status"], 3);
        assert!(
            any_to_json(&Any {
                type_url: "nope.Nope".into(),
                value: vec![]
            })
            .is_none()
        );
    }
}
