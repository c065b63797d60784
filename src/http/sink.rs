//! Who a response is for, decided from the path alone, for the refusals that happen before
//! routing (an unreadable target, a body over the limit or cut short): the GitLab API
//! answers `{"message"}`, the OAuth JSON endpoints an RFC 6749 §5.2 error, everything else
//! an HTML error page. Each sink renders through its own error type, so the headers that
//! sink always sends (`no-store`, `WWW-Authenticate`) come with the refusal too.

use axum::response::{IntoResponse, Response};

use super::body::BodyError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// `/api/v4/*`.
    Api,
    /// The OAuth and OpenID endpoints that answer JSON to a client.
    OAuthJson,
    /// Pages for a browser (including `/oauth/authorize` before its redirect is trusted).
    Page,
}

impl Sink {
    pub fn for_path(path: &str) -> Sink {
        if path.starts_with("/api/") {
            Sink::Api
        } else if path.starts_with("/.well-known/")
            || matches!(
                path,
                "/oauth/token"
                    | "/oauth/token/info"
                    | "/oauth/revoke"
                    | "/oauth/introspect"
                    | "/oauth/authorize_device"
                    | "/oauth/userinfo"
                    | "/oauth/discovery/keys"
            )
        {
            Sink::OAuthJson
        } else {
            Sink::Page
        }
    }

    /// The refusal of an unreadable request, in this sink's format.
    pub fn refuse(self, e: BodyError) -> Response {
        match self {
            Sink::Api => crate::api::error::ApiError::Body(e).into_response(),
            Sink::OAuthJson => crate::oauth::response::body_refused(&e),
            Sink::Page => crate::web::form::bad(e).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_sink() {
        assert_eq!(Sink::for_path("/api/v4/user"), Sink::Api);
        assert_eq!(Sink::for_path("/oauth/token"), Sink::OAuthJson);
        assert_eq!(
            Sink::for_path("/.well-known/openid-configuration"),
            Sink::OAuthJson
        );
        assert_eq!(Sink::for_path("/oauth/authorize"), Sink::Page);
        assert_eq!(Sink::for_path("/users/sign_in"), Sink::Page);
    }
}
