//! Scope checkboxes for the settings forms (applications, personal access tokens).

use crate::domain::scope::CATALOGUE;

/// The catalogue's scopes as checkbox values, ticked when `selected` names them; OpenID
/// Connect scopes only when `with_oidc` (they mean nothing on a personal access token).
pub fn checkboxes(selected: &[String], with_oidc: bool) -> Vec<minijinja::Value> {
    CATALOGUE
        .iter()
        .filter(|s| with_oidc || !s.oidc)
        .map(|s| {
            minijinja::context! {
                name => s.name,
                description => s.description,
                checked => selected.iter().any(|n| n == s.name),
            }
        })
        .collect()
}
