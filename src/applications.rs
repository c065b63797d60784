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
/// settings page), a group (its settings page) or the instance (`None`: the admin API and
/// area), with `audit` ([`creation_event`]). `trusted` skips the consent screen, so only
/// administrators may set it. A `private_key_jwt` client gets no secret (`None`): it
/// authenticates with its keys only, and the stored hash is of a value nobody learns.
pub async fn register_application(
    store: &Store,
    clock: &Clock,
    settings: &ApplicationSettings,
    trusted: bool,
    owner: impl Into<ApplicationOwner>,
    audit: &AuditEvent,
) -> StoreResult<(Application, Option<SecretString>)> {
    let uid = secret::generate_client_id();
    let client_secret = secret::generate(APPLICATION_SECRET_PREFIX);
    let shown = settings.auth_method_column().is_none();
    let app = store
        .create_application(
            &uid,
            &secret::hash(client_secret.expose()),
            settings,
            trusted,
            owner,
            audit,
            clock.now(),
        )
        .await?;
    Ok((app, shown.then_some(client_secret)))
}

/// Gives the application a new secret. The old one stops working at once; tokens already
/// issued stay valid (deleting the application is what revokes them).
pub async fn renew_secret(
    store: &Store,
    clock: &Clock,
    app: &Application,
    audit: &AuditEvent,
) -> StoreResult<SecretString> {
    let client_secret = secret::generate(APPLICATION_SECRET_PREFIX);
    store
        .set_application_secret(
            app.id,
            &secret::hash(client_secret.expose()),
            audit,
            clock.now(),
        )
        .await?;
    Ok(client_secret)
}

/// The audit event of `action` on `app` by `author_id` (`None`: the client itself, or the
/// command line), for the functions above.
pub fn event(action: Action, author_id: Option<i64>, app: &Application) -> AuditEvent {
    AuditEvent::about_application(action, author_id, app.id, &app.name, &app.uid)
}

/// The placeholder event of a new application, completed by the store once it exists.
pub fn creation_event(author_id: Option<i64>) -> AuditEvent {
    AuditEvent::about_application(Action::ApplicationCreated, author_id, 0, "", "")
}
