//! `/oauth/authorize` (RFC 6749 §4.1.1–4.1.2): the consent page, and the redirect back to
//! the client with a code or an error. Every authorization response, success or error,
//! carries `iss` (RFC 9207 §2) so clients can tell which server answered.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

use super::authorization_request::{self, AuthorizationRequest, ResponseMode, ResponseType};
use super::authorization_response::{error_page, redirect_error_for, redirect_to_client, refuse};
use super::consent;
use super::error::{ErrorCode, OAuthError};
use super::issue::{Issuance, Write, issue};
use super::par;
use super::params::Params;
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::redirect_uri::csp_source;
use crate::domain::secret::{self, AUTHORIZATION_CODE_PREFIX};
use crate::http::body;
use crate::oidc::prompt;
use crate::state::AppState;
use crate::store::grants::NewGrant;
use crate::web::csrf::Csrf;
use crate::web::session::{CurrentUser, MaybeUser};

/// Authorization codes live ten minutes (RFC 6749 §4.1.2 recommends at most ten).
pub const CODE_LIFETIME: i64 = 600;
/// FAPI 2.0 §5.3.2.1 item 11: codes live at most 60 seconds under the profile.
pub const FAPI2_CODE_LIFETIME: i64 = 60;

/// `GET /oauth/authorize`.
pub async fn show(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    csrf: Csrf,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let params = match Params::from_form(query.as_bytes()) {
        Ok(p) => p,
        Err(e) => return error_page(&state, e),
    };
    // RFC 9126 §4: a request_uri stands for the whole pushed request.
    let (params, pushed) = match par::resolve(&state, params).await {
        Ok(resolved) => resolved,
        Err(refused) => return par::refusal(&state, refused).await,
    };
    // RFC 9101 §6.3: a request object stands for the whole request. Its errors are shown
    // here: nothing outside a request object that failed can be trusted to redirect to.
    let params = match super::request_object::resolve(&state, params).await {
        Ok(params) => params,
        Err(e) => return error_page(&state, e),
    };
    let request = match authorization_request::validate(&state, &params).await {
        Ok(r) => r,
        Err(e) => return refuse(&state, e),
    };
    if let Err(e) = par::check_required(&state, &request, pushed.as_ref()) {
        return redirect_error_for(&state, &request, &e);
    }
    let pushed = pushed.as_ref();
    // OpenID Connect Core §3.1.2.1: prompt, max_age, login_hint.
    let oidc = match prompt::parse(&params) {
        Ok(o) => o,
        Err(e) => return redirect_error_for(&state, &request, &e),
    };
    let now = state.clock.now();
    let Some(user) = user else {
        // prompt=none never shows a page (Core §3.1.2.1); login_required is §3.1.2.6.
        if oidc.none {
            return redirect_error_for(
                &state,
                &request,
                &OAuthError::new(ErrorCode::LoginRequired),
            );
        }
        // Sign in first, then come straight back to this very request (GitLab, spec §1.2).
        let target = prompt::sign_in_url(&query, oidc.login_hint.as_deref(), None);
        return Redirect::to(&target).into_response();
    };
    // Core §3.1.2.1: prompt=login or a sign-in older than max_age authenticates again;
    // with prompt=none that is login_required (§3.1.2.6).
    if oidc.needs_fresh_sign_in(user.signed_in_at, now) {
        if oidc.none {
            return redirect_error_for(
                &state,
                &request,
                &OAuthError::new(ErrorCode::LoginRequired),
            );
        }
        let target = prompt::sign_in_url(&query, oidc.login_hint.as_deref(), Some(now));
        return Redirect::to(&target).into_response();
    }
    let app = &request.application;
    let trusted = app.trusted;
    // GitLab skips consent for a confidential application the user already authorized for
    // exactly these scopes. Never for a public one (CVE-2023-34246, RFC 8252 §8.6): anyone
    // can claim its client_id.
    let previously = app.confidential
        && match state
            .store
            .has_prior_authorization(user.user.id, app.id, &request.scopes.to_string())
            .await
        {
            Ok(found) => found,
            Err(e) => return error_page(&state, e.into()),
        };
    // Core §3.1.2.1: prompt=consent asks even where GitLab would skip the page. A client
    // nobody vetted (dynamic registration) is asked about every time (issue 13).
    if (trusted || previously) && !oidc.consent && !app.is_dynamic() {
        return approve(&state, &request, &user, pushed).await;
    }
    // Core §3.1.2.6: consent_required when consent would need a page.
    if oidc.none {
        return redirect_error_for(
            &state,
            &request,
            &OAuthError::new(ErrorCode::ConsentRequired),
        );
    }
    consent_page(&state, &request, &user, &csrf, pushed).await
}

/// `POST /oauth/authorize`: the consent form's Authorize or Deny button.
pub async fn decide(
    State(state): State<AppState>,
    user: CurrentUser,
    csrf: Csrf,
    req: axum::extract::Request,
) -> Response {
    answer_consent(&state, &user, &csrf, req, false).await
}

/// `DELETE /oauth/authorize`: GitLab's deny (doorkeeper's `destroy`).
pub async fn deny(
    State(state): State<AppState>,
    user: CurrentUser,
    csrf: Csrf,
    req: axum::extract::Request,
) -> Response {
    answer_consent(&state, &user, &csrf, req, true).await
}

/// Reads the consent form, checks its CSRF token, and authorizes unless told to deny
/// (`always_deny`, or any `decision` other than `authorize`).
async fn answer_consent(
    state: &AppState,
    user: &CurrentUser,
    csrf: &Csrf,
    req: axum::extract::Request,
    always_deny: bool,
) -> Response {
    let params = match read_form(req, state).await {
        Ok(p) => p,
        Err(e) => return error_page(state, e),
    };
    // RFC 6749 §10.12: the authorization endpoint is CSRF-protected.
    if let Err(e) = csrf.verify(params.get(crate::web::csrf::FIELD).unwrap_or_default()) {
        return e.into_response();
    }
    // Only an explicit Authorize approves; anything else is RFC 6749 §4.1.2.1 access_denied.
    let deny = always_deny || params.get("decision") != Some("authorize");
    finish(state, &params, user, deny).await
}

async fn read_form(req: axum::extract::Request, state: &AppState) -> Result<Params, OAuthError> {
    let (kind, bytes) = body::read(req, state)
        .await
        .map_err(|e| OAuthError::with_description(ErrorCode::InvalidRequest, e.to_string()))?;
    // A form, as every page's form: the same fields under a JSON content type are refused.
    if kind != body::BodyKind::Form {
        return Err(OAuthError::with_description(
            ErrorCode::InvalidRequest,
            body::BodyError::UnsupportedMediaType.to_string(),
        ));
    }
    Params::from_form(&bytes)
}

async fn finish(state: &AppState, params: &Params, user: &CurrentUser, deny: bool) -> Response {
    // The form repeats the request; it is validated again, and must be exactly the request
    // the page was rendered for, in this session (`consent`): an edited field gives no code.
    // The form of a pushed request carries its request_uri, which stands for it again.
    let (request_params, pushed) = match par::resolve(state, params.clone()).await {
        Ok(resolved) => resolved,
        Err(refused) => return par::refusal(state, refused).await,
    };
    let request = match authorization_request::validate(state, &request_params).await {
        Ok(r) => r,
        Err(e) => return refuse(state, e),
    };
    if let Err(e) = par::check_required(state, &request, pushed.as_ref()) {
        return redirect_error_for(state, &request, &e);
    }
    // CVE-2020-13300: a decision counts only for the request that was shown.
    if !consent::verify(
        &state.consent_key[..],
        &user.session_hash,
        &request,
        params.get(consent::FIELD).unwrap_or_default(),
        state.clock.now(),
    ) {
        return error_page(
            state,
            OAuthError::with_description(
                ErrorCode::InvalidRequest,
                "The authorization request changed after it was shown, or the page is too old. Start again from the application.",
            )
            .detail("consent binding missing, stale or not matching the submitted request"),
        );
    }
    if deny {
        tracing::info!(user_id = user.user.id, client_id = %request.application.uid, "authorization denied");
        return redirect_error_for(state, &request, &OAuthError::new(ErrorCode::AccessDenied));
    }
    let response = approve(state, &request, user, pushed.as_ref()).await;
    // The user's own decision on the consent page (not a silent approval of a trusted or
    // already-authorized application) is what the audit log keeps.
    let app = &request.application;
    let granted = AuditEvent::about_application(
        Action::AuthorizationGranted,
        Some(user.user.id),
        app.id,
        &app.name,
        &app.uid,
    )
    .with("scopes", request.scopes.to_string());
    if let Err(e) = state
        .store
        .record_audit_event(&granted, state.clock.now())
        .await
    {
        tracing::error!(error = %e, "cannot record the authorization in the audit log");
    }
    response
}

/// Issues a code (or, for the implicit grant, a token) and sends the browser back to the
/// client with it.
async fn approve(
    state: &AppState,
    request: &AuthorizationRequest,
    user: &CurrentUser,
    pushed: Option<&par::Pushed>,
) -> Response {
    if request.response_type == ResponseType::Token {
        // RFC 9126 §4: a pushed request gives one token; spent first, as a token once
        // issued cannot be taken back.
        if let Some(pushed) = pushed {
            match state
                .store
                .spend_pushed_request(pushed.id, state.clock.now())
                .await
            {
                Ok(true) => {}
                Ok(false) => return error_page(state, already_answered()),
                Err(e) => return error_page(state, e.into()),
            }
        }
        return approve_implicit(state, request, user).await;
    }
    let code = secret::generate_ordered(AUTHORIZATION_CODE_PREFIX);
    let now = state.clock.now();
    let scopes = request.scopes.to_string();
    let resources = request.resources.stored();
    let grant = NewGrant {
        code_hash: &secret::token_key(code.expose()),
        application_id: request.application.id,
        user_id: user.user.id,
        redirect_uri: &request.redirect_uri,
        scopes: &scopes,
        code_challenge: request.code_challenge.as_ref(),
        nonce: request.nonce.as_deref(),
        auth_time: user.signed_in_at,
        expires_at: now
            + if state.config.fapi2() {
                FAPI2_CODE_LIFETIME
            } else {
                CODE_LIFETIME
            },
        session_id: Some(user.session_id),
        resources: resources.as_deref(),
        dynamic_client: request.application.is_dynamic(),
        dpop_jkt: request.dpop_jkt.as_deref(),
        // RFC 9126 §4: a pushed request gives one code; spent with it, in one transaction.
        pushed_request: pushed.map(|p| p.id),
    };
    match state.store.create_grant(&grant, now).await {
        Ok(true) => {}
        Ok(false) => return error_page(state, already_answered()),
        Err(e) => return redirect_error_for(state, request, &e.into()),
    }
    tracing::info!(user_id = user.user.id, client_id = %request.application.uid, scopes = %scopes, "authorization granted");
    let mut pairs = vec![("code", code.expose())];
    if let Some(s) = &request.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &state.config.external_url));
    redirect_to_client(&request.redirect_uri, request.response_mode, &pairs)
}

/// A pushed request answered meanwhile (another tab's consent): shown, not redirected, as the
/// answer that won already went to the client (as `par::resolve` answers a used one).
fn already_answered() -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequestUri).detail("request_uri already used")
}

/// RFC 6749 §4.2.2: the access token in the fragment, no refresh token.
async fn approve_implicit(
    state: &AppState,
    request: &AuthorizationRequest,
    user: &CurrentUser,
) -> Response {
    // No refresh token (RFC 6749 §4.2.2) and no id_token: only `response_type=token` is
    // offered, never `id_token token`.
    let issued = issue(
        state,
        Issuance {
            application_id: Some(request.application.id),
            user_id: Some(user.user.id),
            grant_id: None,
            family: None,
            scopes: &request.scopes,
            resources: &request.resources,
            audience: &request.resources,
            with_refresh: false,
            write: Write::Insert,
            dpop_jkt: None,
            subject: None,
        },
    )
    .await;
    let response = match issued {
        Ok(Some(response)) => response,
        Ok(None) => return error_page(state, OAuthError::new(ErrorCode::ServerError)),
        Err(error) => return redirect_error_for(state, request, &error),
    };
    tracing::info!(user_id = user.user.id, client_id = %request.application.uid, scopes = %response.scope, "implicit grant");
    let expires_in = response.expires_in.to_string();
    let mut pairs = vec![
        ("access_token", response.access_token.as_str()),
        ("token_type", response.token_type),
        ("expires_in", expires_in.as_str()),
        ("scope", response.scope.as_str()),
    ];
    if let Some(s) = &request.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &state.config.external_url));
    redirect_to_client(&request.redirect_uri, ResponseMode::Fragment, &pairs)
}

async fn consent_page(
    state: &AppState,
    request: &AuthorizationRequest,
    user: &CurrentUser,
    csrf: &Csrf,
    pushed: Option<&par::Pushed>,
) -> Response {
    let app = &request.application;
    let owner = match (app.owner_id, app.group_id) {
        (Some(id), _) => match state.store.user_by_id(id).await {
            Ok(Some(u)) => format!("@{}", u.username),
            Ok(None) => "a former user".to_string(),
            Err(e) => return error_page(state, e.into()),
        },
        (None, Some(id)) => match state.store.group_by_id(id).await {
            Ok(Some(g)) => format!("the group {}", g.full_path),
            Ok(None) => "a former group".to_string(),
            Err(e) => return error_page(state, e.into()),
        },
        (None, None) if app.is_dynamic() => "itself".to_string(),
        (None, None) => "an administrator of this instance".to_string(),
    };
    let redirect_host = Url::parse(&request.redirect_uri)
        .ok()
        .map(|u| {
            u.host_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}:", u.scheme()))
        })
        .unwrap_or_default();
    let scopes: Vec<_> = request
        .scopes
        .iter()
        .map(|s| minijinja::context! { name => s.name, description => s.description })
        .collect();
    let challenge = request.code_challenge.as_ref().map(|c| c.value.as_str());
    let method = request.code_challenge.as_ref().map(|c| c.method.as_str());
    let page = state.templates.render(
        "authorize.html",
        minijinja::context! {
            title => format!("Authorize {}", app.name),
            current_user => crate::web::session::nav(&user.user),
            csrf_token => csrf.token(),
            app_name => &app.name,
            owner,
            confidential => app.confidential,
            unverified => app.is_dynamic(),
            redirect_host,
            scopes,
            // RFC 8707: one hidden `resource` field per resource, bound like the others.
            resources => request.resources.iter().map(str::to_string).collect::<Vec<_>>(),
            fields => minijinja::context! {
                client_id => &app.uid,
                redirect_uri => &request.redirect_uri,
                response_type => request.response_type.as_str(),
                response_mode => request.response_mode.as_str(),
                state => request.state.as_deref(),
                scope => request.scopes.to_string(),
                code_challenge => challenge,
                code_challenge_method => method,
                nonce => request.nonce.as_deref(),
                dpop_jkt => request.dpop_jkt.as_deref(),
                // RFC 9126: the pushed request's handle, which the form's answer runs again.
                request_uri => pushed.map(|p| p.request_uri.as_str()),
                consent_binding => consent::bind(&state.consent_key[..], &user.session_hash, request, state.clock.now()),
            },
        },
    );
    let mut res = match page {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    // Chromium applies form-action to the redirect that follows the POST, so the client's
    // origin must be allowed for the Authorize button to reach it.
    let target = csp_source(&request.redirect_uri).unwrap_or_default();
    let csp = crate::http::headers::CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {target}"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
