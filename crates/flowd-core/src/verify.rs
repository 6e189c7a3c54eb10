//! Signature verification of hook calls, per workflow (`verify`): which scheme a sender signs
//! its deliveries with, where the secret is (a settings key), and the check of a call's headers
//! and raw body against it. The check is done before anything runs; see CONTRACT.md §2
//! "Signed deliveries".
//!
//! - [`config`]: the workflow's `verify` object, parsed and checked at the edge ([`Verification`]).
//! - [`signature`]: the check of one request ([`Verification::check`]) and why it fails
//!   ([`VerifyFailure`]).

pub mod config;
pub mod signature;

pub use config::{Verification, VerificationError, DEFAULT_TOLERANCE_S};
pub use signature::{SignedRequest, VerifyFailure};
