//! OAuth application operations shared by the settings pages and the admin API: register
//! an application and renew its secret. Each generates what must be random, stores only the
//! SHA-256 of the secret, and hands the secret back in clear, the only time it exists so.
//!
//! The settings arrive already checked by
//! [`validate_settings`](crate::domain::application::validate_settings), which the handlers
//! call with the instance's `allow_http_redirect_uris`.

use crate::domain::application::{Application, ApplicationOwner, ApplicationSettings};
use crate::domain::audit::{Action, AuditEvent};
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
    author_id: Option<i64>,
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
            &AuditEvent::about_application(Action::ApplicationCreated, author_id, 0, "", ""),
            clock.now(),
        )
        .await?;
    Ok((app, client_secret))
}

/// Gives the application a new secret. The old one stops working at once; tokens already
/// issued stay valid (deleting the application is what revokes them).
pub async fn renew_secret(
    store: &Store,
    clock: &Clock,
    app: &Application,
    author_id: Option<i64>,
) -> StoreResult<SecretString> {
    let client_secret = secret::generate(APPLICATION_SECRET_PREFIX);
    let audit = AuditEvent::about_application(
        Action::ApplicationSecretRenewed,
        author_id,
        app.id,
        &app.name,
        &app.uid,
    );
    store
        .set_application_secret(
            app.id,
            &secret::hash(client_secret.expose()),
            &audit,
            clock.now(),
        )
        .await?;
    Ok(client_secret)
}

/// Deletes the application (its codes and tokens with it), recording who did.
pub async fn delete(
    store: &Store,
    clock: &Clock,
    app: &Application,
    author_id: Option<i64>,
) -> StoreResult<()> {
    let audit = AuditEvent::about_application(
        Action::ApplicationDeleted,
        author_id,
        app.id,
        &app.name,
        &app.uid,
    );
    store.delete_application(app.id, &audit, clock.now()).await
}
