//! Images in garbage collection: every image keeps its target and what its labels
//! refer to.

use crate::error::Result;
use crate::gc::{Emit, Node, Participant, Pass, label_refs};
use crate::metadata::WriteTx;

/// The images participant (roots only).
pub struct ImagesGc;

impl Participant for ImagesGc {
    fn name(&self) -> &'static str {
        "images"
    }

    fn roots(&self, tx: &WriteTx, _pass: &Pass, emit: Emit<'_>) -> Result<()> {
        for (ns, image) in tx.all_images()? {
            emit(Node::content(&ns, image.target.digest.as_str()));
            label_refs(&ns, &image.labels, emit);
        }
        Ok(())
    }
}
