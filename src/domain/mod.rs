//! Plain types and rules with no I/O: what a user, a password, a token and a scope are.

pub mod application;
pub mod audit;
pub mod client_assertion;
pub mod client_keys;
pub mod client_registration;
pub mod clock;
pub mod doorkeeper_import;
pub mod dpop;
pub mod group;
pub mod imported_secret;
pub mod jws;
pub mod net;
pub mod password;
pub mod pkce;
pub mod redirect_uri;
pub mod request_object;
pub mod resource;
pub mod scope;
pub mod sealed;
pub mod secret;
pub mod sign_in_throttle;
pub mod two_factor;
pub mod user;
pub mod user_code;
