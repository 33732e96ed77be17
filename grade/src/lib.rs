//! The grader's parts that its tests use too: writing a crate of your own
//! from a stage ([`standalone`]), and starting and stopping a server
//! command ([`process`]).

pub mod process;
pub mod standalone;
