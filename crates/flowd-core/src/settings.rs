//! Settings (a workflow's environment properties): snapshots, change sets, key-level merging and
//! masking of secrets (CONTRACT.md §4).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A workflow's settings: string keys, JSON values.
pub type Settings = serde_json::Map<String, Value>;

/// What masked values look like everywhere flowd shows them.
pub const MASK: &str = "****";

/// What one execution did to its copy of the settings, at top-level key granularity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsChange {
    /// Keys that did not exist before, with their new values.
    pub added: Settings,
    /// Keys whose value changed, with their new values.
    pub changed: Settings,
    /// Keys that were deleted.
    pub removed: Vec<String>,
}

impl SettingsChange {
    /// The change that turns `before` into `after`.
    pub fn between(before: &Settings, after: &Settings) -> SettingsChange {
        let mut change = SettingsChange::default();
        for (key, value) in after {
            match before.get(key) {
                None => {
                    change.added.insert(key.clone(), value.clone());
                }
                Some(old) if old != value => {
                    change.changed.insert(key.clone(), value.clone());
                }
                Some(_) => {}
            }
        }
        change.removed = before
            .keys()
            .filter(|key| !after.contains_key(*key))
            .cloned()
            .collect();
        change
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Applies the change to the *current* settings, key by key: keys this change did not touch
    /// keep whatever value they have now (another execution may have changed them meanwhile).
    pub fn apply_to(&self, current: &mut Settings) {
        for (key, value) in self.added.iter().chain(self.changed.iter()) {
            current.insert(key.clone(), value.clone());
        }
        for key in &self.removed {
            current.remove(key);
        }
    }

    /// The keys written (added or changed) with their values.
    pub fn upserts(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.added.iter().chain(self.changed.iter())
    }

    /// A copy fit to show: values of `secret_keys` masked.
    pub fn masked(&self, secret_keys: &[String]) -> SettingsChange {
        SettingsChange {
            added: masked(&self.added, secret_keys),
            changed: masked(&self.changed, secret_keys),
            removed: self.removed.clone(),
        }
    }
}

/// A copy of `settings` with the value of every key in `secret_keys` replaced by [`MASK`].
pub fn masked(settings: &Settings, secret_keys: &[String]) -> Settings {
    settings
        .iter()
        .map(|(key, value)| {
            if secret_keys.iter().any(|secret| secret == key) {
                (key.clone(), Value::String(MASK.to_string()))
            } else {
                (key.clone(), value.clone())
            }
        })
        .collect()
}

/// The texts to hide from captured output: each secret setting's value, as a string for a
/// string value and as its JSON text otherwise. Values shorter than [`MIN_MASKED_LEN`] are
/// left out: masking every `1` or `a` in the output would destroy it and protect nothing.
pub fn secret_texts(settings: &Settings, secret_keys: &[String]) -> Vec<String> {
    secret_texts_with_env(settings, &BTreeMap::new(), secret_keys)
}

/// [`secret_texts`], and the value of each environment variable in `env` whose name is in
/// `secret_keys` (a workflow's secret `env`).
pub fn secret_texts_with_env(
    settings: &Settings,
    env: &BTreeMap<String, String>,
    secret_keys: &[String],
) -> Vec<String> {
    let setting_texts = secret_keys
        .iter()
        .filter_map(|key| settings.get(key))
        .map(|value| match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    let env_texts = secret_keys.iter().filter_map(|name| env.get(name)).cloned();
    let mut texts: Vec<String> = setting_texts
        .chain(env_texts)
        .filter(|text| text.chars().count() >= MIN_MASKED_LEN)
        .collect();
    // Longest first, so that a secret containing another is masked whole.
    texts.sort_by_key(|text| std::cmp::Reverse(text.len()));
    texts.dedup();
    texts
}

/// Secret values shorter than this are not masked in captured output.
pub const MIN_MASKED_LEN: usize = 3;

/// Replaces every occurrence of each of `secrets` in `text` with [`MASK`].
pub fn mask_text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if !secret.is_empty() && out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(value: Value) -> Settings {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn secret_env_values_are_secret_texts_and_other_env_values_are_not() {
        let env: BTreeMap<String, String> = [
            ("TOKEN".to_string(), "env-secret-value".to_string()),
            ("REGION".to_string(), "eu-west".to_string()),
        ]
        .into();
        let texts = secret_texts_with_env(&Settings::new(), &env, &["TOKEN".to_string()]);
        assert_eq!(texts, vec!["env-secret-value".to_string()]);
    }

    #[test]
    fn change_lists_added_changed_and_removed_keys() {
        let before = settings(json!({"a": 1, "b": 2, "c": 3}));
        let after = settings(json!({"a": 1, "b": 20, "d": 4}));
        let change = SettingsChange::between(&before, &after);
        assert_eq!(change.added, settings(json!({"d": 4})));
        assert_eq!(change.changed, settings(json!({"b": 20})));
        assert_eq!(change.removed, vec!["c".to_string()]);
    }

    #[test]
    fn unchanged_settings_give_an_empty_change() {
        let before = settings(json!({"a": {"x": [1, 2]}}));
        assert!(SettingsChange::between(&before, &before.clone()).is_empty());
    }

    #[test]
    fn nested_change_counts_as_a_change_of_its_top_level_key() {
        let before = settings(json!({"cfg": {"a": 1, "b": 2}}));
        let after = settings(json!({"cfg": {"a": 1}}));
        let change = SettingsChange::between(&before, &after);
        assert_eq!(change.changed, settings(json!({"cfg": {"a": 1}})));
    }

    #[test]
    fn concurrent_changes_to_different_keys_both_survive() {
        let snapshot = settings(json!({"a": 1, "b": 1}));
        let first = SettingsChange::between(&snapshot, &settings(json!({"a": 2, "b": 1})));
        let second = SettingsChange::between(&snapshot, &settings(json!({"a": 1, "b": 3})));
        let mut current = snapshot.clone();
        first.apply_to(&mut current);
        second.apply_to(&mut current);
        assert_eq!(current, settings(json!({"a": 2, "b": 3})));
    }

    #[test]
    fn on_the_same_key_the_last_applied_change_wins() {
        let snapshot = settings(json!({"a": 1}));
        let first = SettingsChange::between(&snapshot, &settings(json!({"a": 2})));
        let second = SettingsChange::between(&snapshot, &settings(json!({"a": 3})));
        let mut current = snapshot.clone();
        first.apply_to(&mut current);
        second.apply_to(&mut current);
        assert_eq!(current["a"], json!(3));
    }

    #[test]
    fn removal_applies_even_if_another_execution_changed_the_key() {
        let mut current = settings(json!({"a": 5}));
        let change = SettingsChange {
            removed: vec!["a".into()],
            ..Default::default()
        };
        change.apply_to(&mut current);
        assert!(current.is_empty());
    }

    #[test]
    fn masked_hides_only_secret_keys() {
        let s = settings(json!({"API_KEY": "abc123", "URL": "https://x"}));
        let shown = masked(&s, &["API_KEY".to_string()]);
        assert_eq!(shown["API_KEY"], json!(MASK));
        assert_eq!(shown["URL"], json!("https://x"));
    }

    #[test]
    fn mask_text_replaces_every_occurrence_of_each_secret() {
        let s = settings(json!({"K": "s3cr3t", "N": 123456}));
        let secrets = secret_texts(&s, &["K".to_string(), "N".to_string()]);
        let text = mask_text("key=s3cr3t again s3cr3t num=123456", &secrets);
        assert_eq!(text, "key=**** again **** num=****");
    }

    #[test]
    fn very_short_secrets_are_not_masked_in_text() {
        let s = settings(json!({"K": "ab"}));
        assert!(secret_texts(&s, &["K".to_string()]).is_empty());
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        let s = settings(json!({"A": "token", "B": "token-extended"}));
        let secrets = secret_texts(&s, &["A".to_string(), "B".to_string()]);
        assert_eq!(mask_text("x token-extended y", &secrets), "x **** y");
    }
}
