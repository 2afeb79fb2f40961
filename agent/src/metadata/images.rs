//! Image records: a name in a namespace pointing at a target descriptor (a manifest or
//! an index in the content store), with labels and times.

use serde::{Deserialize, Serialize};

use super::{ReadTx, Table, WriteTx, key, prefix};
use crate::content::Descriptor;
use crate::error::Result;
use crate::labels::Labels;

/// `ns \0 name` -> [`Image`].
pub(crate) const IMAGES: Table = Table::new("images");

/// An image record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    #[serde(default)]
    pub labels: Labels,
    pub target: Descriptor,
    /// Nanoseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! image_reads {
    ($tx:ty) => {
        impl $tx {
            pub fn image(&self, ns: &str, name: &str) -> Result<Option<Image>> {
                self.get(IMAGES, &key(&[ns, name]))
            }

            /// Every image of `ns`, ordered by name.
            pub fn images(&self, ns: &str) -> Result<Vec<Image>> {
                Ok(self
                    .scan::<Image>(IMAGES, &prefix(&[ns]))?
                    .into_iter()
                    .map(|(_, i)| i)
                    .collect())
            }

            /// Every image of every namespace, as `(ns, image)`.
            pub fn all_images(&self) -> Result<Vec<(String, Image)>> {
                Ok(self
                    .scan::<Image>(IMAGES, "")?
                    .into_iter()
                    .filter_map(|(k, i)| Some((k.split_once('\0')?.0.to_string(), i)))
                    .collect())
            }
        }
    };
}

image_reads!(ReadTx);
image_reads!(WriteTx);

impl WriteTx {
    pub fn put_image(&self, ns: &str, image: &Image) -> Result<()> {
        self.put(IMAGES, &key(&[ns, &image.name]), image)
    }

    /// Removes the record; true if it existed.
    pub fn remove_image(&self, ns: &str, name: &str) -> Result<bool> {
        self.remove(IMAGES, &key(&[ns, name]))
    }
}
