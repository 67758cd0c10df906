//! Autogenerate (issue 15, in progress): the declared schema read as ops. Comparing it
//! with the schema the history builds, and writing the revision, come next.

pub mod declared;
pub mod diff;
pub mod model;
