//! One module per group of commands. They share what they parse (`args`) and how they show
//! things (`format`), and never import from each other.

pub mod args;
pub mod audit;
pub mod backup;
pub mod deploy;
pub mod executions;
pub mod format;
pub mod invoke;
pub mod keys;
pub mod login;
pub mod migrate_store;
pub mod replay;
pub mod rotate_key;
pub mod run;
pub mod settings;
pub mod teams;
pub mod versions;
pub mod workflows;
