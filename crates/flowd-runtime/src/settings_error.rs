//! Why the settings a workflow left after its run cannot be persisted.

/// Carried by [`Outcome::Returned`](crate::Outcome::Returned) in place of the settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The runner could not encode them as a JSON object (a value JSON has no type for, a key
    /// that is not a string, a cycle); the message names the key and the type.
    #[error("{0}")]
    NotJson(String),
    /// The result frame carried no settings at all.
    #[error("the runner sent no settings")]
    Missing,
}
