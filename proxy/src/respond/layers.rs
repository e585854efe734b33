//! What a response is made from: the host's site (`crate::resolve`), file bodies
//! (`crate::bodies`) and the storage behind both.

use scalemesh_core::storage::Storage;

use crate::bodies::Bodies;
use crate::resolve::Resolver;

/// The layers a response is made from.
#[derive(Clone, Copy)]
pub struct Layers<'a> {
    pub resolver: &'a Resolver,
    pub bodies: &'a Bodies,
    pub storage: &'a dyn Storage,
}
