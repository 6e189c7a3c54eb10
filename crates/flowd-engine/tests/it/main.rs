//! The engine against a real store and real Python, with the scheduler driven by hand.

mod scheduler;
mod support;
