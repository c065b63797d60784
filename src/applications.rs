//! OAuth application operations shared by the settings pages and the admin API: register
//! an application and renew its secret. Each generates what must be random, stores only the
//! SHA-256 of the secret, and hands the secret back in clear, the only time it exists so.
//!
//! The settings arrive already checked by
//! [`validate_settings`](crate::domain::application::validate_settings), which the handlers
//! call with the instance's `allow_http_redirect_uris`.

use crate::domain::application::{Application, ApplicationOwner, ApplicationSettings};
use crate::domain::clock::Clock;
use crate::domain::secret::{self, APPLICATION_SECRET_PREFIX, SecretString};
use crate::store::{Store, StoreResult};

/// Registers an application with a new client id and secret, owned by a user (their
/// settings page), a group (its settings page) or the instance (`None`: the admin API).
/// `trusted` skips the consent screen, so only administrators may set it.
pub async fn register_application(
    store: &Store,
    clock: &Clock,
    settings: &ApplicationSettings,
    trusted: bool,
    owner: impl Into<ApplicationOwner>,
) -> StoreResult<(Application, SecretString)> {
    let uid = secret::generate_client_id();
    let client_secret = secret::generate(APPLICATION_SECRET_PREFIX);
    let app = store
        .create_application(
            &uid,
            &secret::hash(client_secret.expose()),
            settings,
            trusted,
            owner,
            clock.now(),
        )
        .await?;
    Ok((app, client_secret))
}

/// Gives the application a new secret. The old one stops working at once; tokens already
/// issued stay valid (deleting the application is what revokes them).
pub async fn renew_secret(store: &Store, clock: &Clock, app_id: i64) -> StoreResult<SecretString> {
    let client_secret = secret::generate(APPLICATION_SECRET_PREFIX);
    store
        .set_application_secret(app_id, &secret::hash(client_secret.expose()), clock.now())
        .await?;
    Ok(client_secret)
}
