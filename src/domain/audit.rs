//! Audit events: who did what to whom, recorded in the same transaction as the change
//! (`store::audit_events`) and served in GitLab's shape by `GET /api/v4/audit_events`.
//! Never a secret, token or password in one; the reason a sign-in failed stays internal
//! (the log line, not the API) only as a coarse word.

use serde_json::{Map, Value};

/// What happened; `details.action` in the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SignIn,
    SignInFailed,
    Lockout,
    SignOut,
    PasswordChanged,
    PasswordReset,
    PasswordResetRequested,
    TwoFactorEnabled,
    TwoFactorDisabled,
    RecoveryCodeUsed,
    PersonalAccessTokenCreated,
    PersonalAccessTokenRevoked,
    ApplicationCreated,
    ApplicationUpdated,
    ApplicationSecretRenewed,
    ApplicationDeleted,
    AuthorizationGranted,
    AuthorizationRevoked,
    UserSignedUp,
    UserCreated,
    UserUpdated,
    UserBlocked,
    UserUnblocked,
    UserApproved,
    UserRejected,
    UserDeleted,
    EmailConfirmed,
    EmailChangeRequested,
    SessionRevoked,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::SignInFailed => "sign_in_failed",
            Action::Lockout => "user_locked",
            Action::SignOut => "sign_out",
            Action::PasswordChanged => "password_changed",
            Action::PasswordReset => "password_reset",
            Action::PasswordResetRequested => "password_reset_requested",
            Action::TwoFactorEnabled => "two_factor_enabled",
            Action::TwoFactorDisabled => "two_factor_disabled",
            Action::RecoveryCodeUsed => "recovery_code_used",
            Action::PersonalAccessTokenCreated => "personal_access_token_created",
            Action::PersonalAccessTokenRevoked => "personal_access_token_revoked",
            Action::ApplicationCreated => "application_created",
            Action::ApplicationUpdated => "application_updated",
            Action::ApplicationSecretRenewed => "application_secret_renewed",
            Action::ApplicationDeleted => "application_deleted",
            Action::AuthorizationGranted => "authorization_granted",
            Action::AuthorizationRevoked => "authorization_revoked",
            Action::UserSignedUp => "user_signed_up",
            Action::UserCreated => "user_created",
            Action::UserUpdated => "user_updated",
            Action::UserBlocked => "user_blocked",
            Action::UserUnblocked => "user_unblocked",
            Action::UserApproved => "user_approved",
            Action::UserRejected => "user_rejected",
            Action::UserDeleted => "user_deleted",
            Action::EmailConfirmed => "email_confirmed",
            Action::EmailChangeRequested => "email_change_requested",
            Action::SessionRevoked => "session_revoked",
        }
    }
}

/// The kind of thing an event is about (GitLab's `entity_type`).
pub const ENTITY_USER: &str = "User";
pub const ENTITY_APPLICATION: &str = "Application";

/// One event, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// Who acted; `None` for an anonymous actor (a failed sign-in of an unknown login, a
    /// sign-up).
    pub author_id: Option<i64>,
    pub entity_type: &'static str,
    pub entity_id: i64,
    pub action: Action,
    /// The client address of the request that caused it.
    pub ip_address: String,
    /// `details` besides `action`: `target_id`, `target_type`, `target_details`, ...
    pub details: Map<String, Value>,
}

impl AuditEvent {
    /// An event about user `user_id`, done by `author_id` (themselves when the same).
    pub fn about_user(
        action: Action,
        author_id: Option<i64>,
        user_id: i64,
        username: &str,
    ) -> Self {
        let mut details = Map::new();
        details.insert("target_id".into(), user_id.into());
        details.insert("target_type".into(), ENTITY_USER.into());
        details.insert("target_details".into(), username.into());
        AuditEvent {
            author_id,
            entity_type: ENTITY_USER,
            entity_id: user_id,
            action,
            ip_address: String::new(),
            details,
        }
    }

    /// An event about application `id` (named `name`, client id `client_id`).
    pub fn about_application(
        action: Action,
        author_id: Option<i64>,
        id: i64,
        name: &str,
        client_id: &str,
    ) -> Self {
        let mut details = Map::new();
        details.insert("target_id".into(), id.into());
        details.insert("target_type".into(), ENTITY_APPLICATION.into());
        details.insert("target_details".into(), name.into());
        details.insert("client_id".into(), client_id.into());
        AuditEvent {
            author_id,
            entity_type: ENTITY_APPLICATION,
            entity_id: id,
            action,
            ip_address: String::new(),
            details,
        }
    }

    /// The same event about the user just created as `id` (unknown when it was made).
    pub fn about_new_user(mut self, id: i64) -> Self {
        self.entity_id = id;
        self.details.insert("target_id".into(), id.into());
        self
    }

    /// The same event about the application just created (unknown when it was made).
    pub fn about_new_application(mut self, id: i64, name: &str, client_id: &str) -> Self {
        self.entity_type = ENTITY_APPLICATION;
        self.entity_id = id;
        self.details.insert("target_id".into(), id.into());
        self.details
            .insert("target_type".into(), ENTITY_APPLICATION.into());
        self.details.insert("target_details".into(), name.into());
        self.details.insert("client_id".into(), client_id.into());
        self
    }

    pub fn from_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip_address = ip.into();
        self
    }

    /// Adds a detail (never a secret).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// The stored `details` object: `action` first, then the rest, and the address.
    pub fn details_json(&self) -> String {
        let mut all = Map::new();
        all.insert("action".into(), self.action.as_str().into());
        for (k, v) in &self.details {
            all.insert(k.clone(), v.clone());
        }
        if !self.ip_address.is_empty() {
            all.insert("ip_address".into(), self.ip_address.clone().into());
        }
        Value::Object(all).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_name_the_action_and_target() {
        let event =
            AuditEvent::about_user(Action::UserBlocked, Some(1), 7, "alice").from_ip("10.0.0.1");
        let details: Value = serde_json::from_str(&event.details_json()).unwrap_or_default();
        assert_eq!(details["action"], "user_blocked");
        assert_eq!(details["target_id"], 7);
        assert_eq!(details["target_details"], "alice");
        assert_eq!(details["ip_address"], "10.0.0.1");
        assert_eq!(event.entity_id, 7);
    }
}
