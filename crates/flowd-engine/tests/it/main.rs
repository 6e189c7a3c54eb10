//! The engine against a real store and real Python, with the scheduler driven by hand.

mod audit;
mod bootstrap;
mod conclude;
mod deploys;
mod executions;
mod keys;
mod scheduler;
mod support;
