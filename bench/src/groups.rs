//! W8, group claims (issue 11: "the claims and API stay fast with 10,000 groups and a user
//! in 1,000 of them"). Groups are seeded through the API, 10,000 by default: each top-level
//! group has 9 subgroups of 10 subgroups each, three levels. One user is a direct member of
//! a tenth of them at mixed levels, a control user of none. For both users, in the same run
//! and at every connection count: W8a, `GET /oauth/userinfo` (`groups` and the three level
//! claims, read afresh on every call), and W8b, the refresh grant with `openid` (every
//! answer is a new id_token with `groups_direct`), each run of the member compared with the
//! control's just before it.
//!
//! Before the runs the claims are checked once against what was seeded, and their parts are
//! timed in this process through the `doorward` library on the same database: the claims
//! query (`Store::group_claims`), the UserInfo JSON, and the id_token's claims signed RS256.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Request, StatusCode};
use base64::Engine;
use doorward::domain::clock::Clock;
use doorward::domain::scope::ScopeSet;
use doorward::domain::secret;
use doorward::oidc::claims::{
    DEVELOPER_CLAIM, MAINTAINER_CLAIM, OWNER_CLAIM, UserInfo, UserInfoGroupClaims, groups_direct,
    user_claims,
};
use doorward::oidc::id_token::{self, Subject};
use doorward::oidc::signing_keys::{self, Alg, SigningKey};
use doorward::store::{Store, StoreOptions};
use serde_json::{Value, json};

use crate::drive::{Rows, Runs};
use crate::load::{self, Body, Plan, Workload};
use crate::report::VsControl;
use crate::seed::{self, REDIRECT_URI, World};
use crate::server::Process;
use crate::workloads::{self as wl, TokenPair};

/// Subgroups of each top-level group, and subgroups of each of those: 1 + 9 × (1 + 10) =
/// 100 groups under each top-level group.
const MIDS: usize = 9;
const LEAVES: usize = 10;
const PER_TOP: usize = 1 + MIDS * (1 + LEAVES);
/// The levels of the member's direct memberships, in turn: Guest, Reporter, Developer,
/// Maintainer, Owner.
const LEVELS: [i64; 5] = [10, 20, 30, 40, 50];
/// Connections that seed (groups, memberships, tokens).
const SEED_CONNECTIONS: usize = 16;
/// Access tokens per user for W8a (never refreshed, so they stay valid through W8b).
const USERINFO_TOKENS: usize = 4;
const SCOPES: &str = "openid read_user";
const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Path of the `t`-th top-level group.
fn top_path(t: usize) -> String {
    format!("w8-t{t:03}")
}

/// The member's direct memberships, as (full path, level). Under each top-level group, ten:
/// one subgroup (whose 10 subgroups are then inherited), one of those 10 as well (direct
/// and inherited: the direct level counts), and one leaf under each of the other 8
/// subgroups; so 10 direct and 19 claimed paths per top-level group. Levels cycle through
/// [`LEVELS`], shifted by one for each top-level group (each level twice under each).
fn memberships(tops: usize) -> Vec<(String, i64)> {
    let mut paths = Vec::with_capacity(tops * 10);
    for t in 0..tops {
        let top = top_path(t);
        let own = t % MIDS;
        paths.push(format!("{top}/m{own}"));
        paths.push(format!("{top}/m{own}/l{}", t % LEAVES));
        for m in (0..MIDS).filter(|m| *m != own) {
            paths.push(format!("{top}/m{m}/l{}", (t + m) % LEAVES));
        }
    }
    paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| (path, LEVELS[(i + i / 10) % LEVELS.len()]))
        .collect()
}

/// What a user's claims must hold: paths in `groups`, in `groups_direct`, and in the owner,
/// maintainer and developer claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Claimed {
    groups: usize,
    direct: usize,
    owner: usize,
    maintainer: usize,
    developer: usize,
}

impl Claimed {
    fn of(tops: usize, direct: &[(String, i64)]) -> Claimed {
        let at = |level: i64| direct.iter().filter(|(_, l)| *l == level).count();
        Claimed {
            groups: tops * (1 + LEAVES + (MIDS - 1)),
            direct: direct.len(),
            owner: at(50),
            maintainer: at(40),
            developer: at(30),
        }
    }
}

/// `1,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One of W8's two users and what its runs need.
struct ClaimsUser {
    /// `user in 1,000 groups` or `control user, no group`.
    label: String,
    id: i64,
    /// Access tokens (`openid read_user`) for W8a.
    access: Vec<String>,
    /// Never-presented refresh tokens for W8b.
    pool: wl::RefreshPool,
    claimed: Claimed,
    userinfo_bytes: usize,
    id_token_bytes: usize,
}

impl ClaimsUser {
    /// Splits the user's token pairs (access tokens for W8a, the rest's refresh tokens for
    /// W8b) and checks the claims once, UserInfo and an id_token of the password grant,
    /// against `want`.
    async fn new(
        world: &World,
        label: String,
        id: i64,
        mut pairs: Vec<TokenPair>,
        want: Claimed,
    ) -> anyhow::Result<ClaimsUser> {
        let id_token = pairs
            .first()
            .and_then(|p| p.id_token.clone())
            .context("the password grant with openid gave no id_token")?;
        let for_userinfo: Vec<TokenPair> =
            pairs.drain(..USERINFO_TOKENS.min(pairs.len())).collect();
        let access: Vec<String> = for_userinfo.into_iter().map(|p| p.access_token).collect();
        let pool = Arc::new(Mutex::new(
            pairs.into_iter().filter_map(|p| p.refresh_token).collect(),
        ));

        let (parts, body) = seed::call(
            world.addr,
            Request::get("/oauth/userinfo")
                .header(header::AUTHORIZATION, wl::bearer(&access[0]))
                .body(Body::new())?,
        )
        .await?;
        seed::expect(&parts, &body, StatusCode::OK, "GET /oauth/userinfo")?;
        let info: Value = serde_json::from_slice(&body)?;
        let count = |v: &Value, name: &str| v[name].as_array().map_or(0, Vec::len);
        let payload = id_token
            .split('.')
            .nth(1)
            .context("the id_token is not a JWS")?;
        let payload: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?,
        )?;
        let got = Claimed {
            groups: count(&info, "groups"),
            direct: count(&payload, "groups_direct"),
            owner: count(&info, OWNER_CLAIM),
            maintainer: count(&info, MAINTAINER_CLAIM),
            developer: count(&info, DEVELOPER_CLAIM),
        };
        if got != want || info["groups"].is_null() || payload["groups_direct"].is_null() {
            bail!("the claims of the {label}: {got:?}, seeded {want:?}");
        }
        Ok(ClaimsUser {
            label,
            id,
            access,
            pool,
            claimed: got,
            userinfo_bytes: body.len(),
            id_token_bytes: id_token.len(),
        })
    }

    /// W8a. An answer under 90 % of the checked one's size is wrong.
    fn userinfo(&self) -> wl::Userinfo {
        wl::Userinfo {
            tokens: self.access.iter().map(|t| wl::bearer(t)).collect(),
            min_len: self.userinfo_bytes * 9 / 10,
        }
    }

    /// W8b, as W2: the FIFO pool, and an id_token of at least 90 % of the checked one's
    /// size in every answer.
    fn refresh(&self, basic: &HeaderValue) -> wl::Refresh {
        wl::Refresh {
            basic: basic.clone(),
            pool: self.pool.clone(),
            id_token: Some(self.id_token_bytes * 9 / 10),
        }
    }

    fn to_json(&self, parts: &Value) -> Value {
        let c = &self.claimed;
        json!({
            "label": self.label,
            "user_id": self.id,
            "groups": c.groups,
            "groups_direct": c.direct,
            "owner": c.owner,
            "maintainer": c.maintainer,
            "developer": c.developer,
            "userinfo_bytes": self.userinfo_bytes,
            "id_token_bytes": self.id_token_bytes,
            "parts_in_process": parts,
        })
    }
}

/// W8 on the running server `p`, when it is wanted: seeds the groups, the two users and
/// their tokens, checks and times the claims, then measures both users at every connection
/// count. Returns what the JSON keeps about the seeding and the claims (null without W8).
pub async fn group_claims(
    runs: &mut Runs<'_>,
    p: &Process,
    world: &World,
) -> anyhow::Result<Value> {
    let s = runs.s;
    if !s.wants("W8") {
        return Ok(Value::Null);
    }
    let tops = s.groups.div_ceil(PER_TOP).max(1);
    let admin = (
        HeaderName::from_static("private-token"),
        HeaderValue::from_str(&world.admin)?,
    );

    // Two users and an application with `openid`, through the API.
    let (member_id, member_password) = new_user(world, "bench-groups-member").await?;
    let (control_id, control_password) = new_user(world, "bench-groups-control").await?;
    let (client_id, basic) = new_application(world).await?;

    // The groups, one level after the other (each needs its parents' ids).
    let mut ids: HashMap<String, i64> = HashMap::new();
    let group = |name: String, path: String, parent: Option<i64>| {
        let mut body = json!({"name": name, "path": path});
        if let Some(parent) = parent {
            body["parent_id"] = json!(parent);
        }
        ("/api/v4/groups".to_string(), Bytes::from(body.to_string()))
    };
    let t = Instant::now();
    let mut rates = Vec::new();
    let level: Vec<_> = (0..tops)
        .map(|t| group(format!("W8 {t}"), top_path(t), None))
        .collect();
    rates.push(create_groups(p, &admin, level, &mut ids).await?);
    let mut level = Vec::new();
    for t in 0..tops {
        let parent = ids[&top_path(t)];
        for m in 0..MIDS {
            level.push(group(format!("W8 {t} {m}"), format!("m{m}"), Some(parent)));
        }
    }
    rates.push(create_groups(p, &admin, level, &mut ids).await?);
    let mut level = Vec::new();
    for t in 0..tops {
        for m in 0..MIDS {
            let parent = ids[&format!("{}/m{m}", top_path(t))];
            for l in 0..LEAVES {
                level.push(group(
                    format!("W8 {t} {m} {l}"),
                    format!("l{l}"),
                    Some(parent),
                ));
            }
        }
    }
    rates.push(create_groups(p, &admin, level, &mut ids).await?);
    let groups_took = t.elapsed();
    if ids.len() != tops * PER_TOP {
        bail!("seeded {} groups, not {}", ids.len(), tops * PER_TOP);
    }

    // The member's direct memberships.
    let t = Instant::now();
    let direct = memberships(tops);
    let posts = direct
        .iter()
        .map(|(path, level)| {
            let body = json!({"user_id": member_id, "access_level": level});
            (
                format!("/api/v4/groups/{}/members", ids[path]),
                Bytes::from(body.to_string()),
            )
        })
        .collect();
    post_all(p, posts, JSON, &admin, StatusCode::CREATED).await?;
    let members_took = t.elapsed();

    // Tokens with `openid`, through the password grant: a few access tokens for W8a and,
    // for W8b, a pool of refresh tokens a quarter larger than the most connections.
    let t = Instant::now();
    let most = s.connections.iter().copied().max().unwrap_or(32);
    let per_user = USERINFO_TOKENS + most + most / 4 + 4;
    let auth = (header::AUTHORIZATION, basic.clone());
    let mut pairs = Vec::new();
    for (login, password) in [
        ("bench-groups-member", &member_password),
        ("bench-groups-control", &control_password),
    ] {
        let body = Bytes::from(wl::form(&[
            ("grant_type", "password"),
            ("username", login),
            ("password", password),
            ("scope", SCOPES),
        ]));
        let posts = vec![("/oauth/token".to_string(), body); per_user];
        let answers = post_all(p, posts, FORM, &auth, StatusCode::OK).await?;
        pairs.push(
            answers
                .iter()
                .map(|b| serde_json::from_slice::<TokenPair>(b))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let tokens_took = t.elapsed();
    let control_pairs = pairs.pop().unwrap_or_default();
    let member_pairs = pairs.pop().unwrap_or_default();
    let member_label = format!("user in {} groups", thousands(direct.len()));
    let member = ClaimsUser::new(
        world,
        member_label.clone(),
        member_id,
        member_pairs,
        Claimed::of(tops, &direct),
    )
    .await?;
    let control = ClaimsUser::new(
        world,
        "control user, no group".into(),
        control_id,
        control_pairs,
        Claimed::default(),
    )
    .await?;
    println!(
        "W8: seeded {} groups through POST /api/v4/groups in {:.1} s ({:.0}/s; by level {:.0}, {:.0}, {:.0}/s), {} memberships in {:.1} s, {} password grants in {:.1} s; the member's UserInfo lists {} groups ({} bytes), its id_token {} direct ({} bytes); the control's {} and {} bytes",
        ids.len(),
        groups_took.as_secs_f64(),
        ids.len() as f64 / groups_took.as_secs_f64().max(1e-9),
        rates[0],
        rates[1],
        rates[2],
        direct.len(),
        members_took.as_secs_f64(),
        2 * per_user,
        tokens_took.as_secs_f64(),
        member.claimed.groups,
        member.userinfo_bytes,
        member.claimed.direct,
        member.id_token_bytes,
        control.userinfo_bytes,
        control.id_token_bytes,
    );
    let iterations = if s.smoke { 5 } else { 200 };
    let issuer = format!("http://{}", world.addr);
    let parts = time_parts(runs, &issuer, &client_id, &[&member, &control], iterations).await?;

    // The runs: at each connection count, the control and then the member, for UserInfo
    // and then for the id_token.
    let what = format!("{member_label} / control user");
    for &c in &s.connections {
        let plan = Plan::timed(c, s.duration);
        for id in ["W8a", "W8b"] {
            let mut vs: Option<VsControl> = None;
            for u in [&control, &member] {
                let (w, label, rows, note): (Arc<dyn Workload>, _, _, _) = if id == "W8a" {
                    (
                        Arc::new(u.userinfo()),
                        format!("GET /oauth/userinfo: {}", u.label),
                        Rows::Irrelevant,
                        format!(
                            "{} access tokens ({SCOPES}); answers of {} bytes: groups {}, owner/maintainer/developer {}/{}/{}",
                            u.access.len(),
                            u.userinfo_bytes,
                            u.claimed.groups,
                            u.claimed.owner,
                            u.claimed.maintainer,
                            u.claimed.developer
                        ),
                    )
                } else {
                    (
                        Arc::new(u.refresh(&basic)),
                        format!("refresh + id_token: {}", u.label),
                        Rows::Count,
                        format!(
                            "FIFO pool of {} unused refresh tokens ({SCOPES}, password grant); each answer's new refresh token joins the back; id_token of {} bytes, groups_direct {}",
                            u.pool.lock().map(|p| p.len()).unwrap_or(0),
                            u.id_token_bytes,
                            u.claimed.direct
                        ),
                    )
                };
                let m = runs
                    .measure(p, id, &label, rows, w, &plan)
                    .await?
                    .note(note);
                match &vs {
                    None => {
                        vs = Some(VsControl::of(&m, what.clone()));
                        runs.record(m);
                    }
                    Some(control) => runs.record(m.versus(control.clone())),
                }
            }
        }
    }

    Ok(json!({
        "groups": ids.len(),
        "shape": format!("{tops} top-level groups, each with {MIDS} subgroups of {LEAVES} subgroups (three levels); root (the API's caller) is the direct Owner of every group"),
        "memberships": format!("the member: direct in {} groups, levels Guest, Reporter, Developer, Maintainer, Owner in turn; under each top-level group one subgroup (its {LEAVES} subgroups inherited), one of those, and one leaf under each other subgroup", direct.len()),
        "seeding": {
            "method": "POST /api/v4/groups and POST /api/v4/groups/:id/members with root's token, tokens by POST /oauth/token (password grant, scope openid read_user)",
            "connections": SEED_CONNECTIONS,
            "groups_seconds": groups_took.as_secs_f64(),
            "groups_per_s": ids.len() as f64 / groups_took.as_secs_f64().max(1e-9),
            "groups_per_s_by_level": rates,
            "memberships_seconds": members_took.as_secs_f64(),
            "password_grants": 2 * per_user,
            "tokens_seconds": tokens_took.as_secs_f64(),
        },
        "member": member.to_json(&parts[0]),
        "control": control.to_json(&parts[1]),
    }))
}

/// Sends each POST of `posts` once over [`SEED_CONNECTIONS`] connections; every answer
/// must have status `want`. Returns the answers' bodies (in the order they came).
async fn post_all(
    p: &Process,
    posts: Vec<(String, Bytes)>,
    content_type: &'static str,
    auth: &(HeaderName, HeaderValue),
    want: StatusCode,
) -> anyhow::Result<Vec<Bytes>> {
    let n = posts.len();
    let what = posts
        .first()
        .map(|(path, _)| path.clone())
        .unwrap_or_default();
    let script = Arc::new(wl::Script::new(posts, content_type, auth.clone(), want));
    let plan = Plan::timed(SEED_CONNECTIONS.min(n.max(1)), Duration::from_secs(600));
    let o = load::run(p.addr, script.clone(), &plan, p.pid).await?;
    if o.errors > 0 {
        bail!(
            "POST {what}…: {} of {n} failed: {:?}",
            o.errors,
            o.error_samples
        );
    }
    let answers = std::mem::take(
        &mut *script
            .answers
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?,
    );
    if answers.len() != n {
        bail!("POST {what}…: {} answers to {n} requests", answers.len());
    }
    Ok(answers)
}

/// Creates the groups of `posts` (`POST /api/v4/groups`) and keeps each one's id by its
/// full path; returns how many were created per second.
async fn create_groups(
    p: &Process,
    admin: &(HeaderName, HeaderValue),
    posts: Vec<(String, Bytes)>,
    ids: &mut HashMap<String, i64>,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    let answers = post_all(p, posts, JSON, admin, StatusCode::CREATED).await?;
    let rate = answers.len() as f64 / t.elapsed().as_secs_f64().max(1e-9);
    for body in answers {
        let g: Value = serde_json::from_slice(&body)?;
        let path = g["full_path"]
            .as_str()
            .context("a group without full_path")?;
        ids.insert(
            path.to_string(),
            g["id"].as_i64().context("a group without id")?,
        );
    }
    Ok(rate)
}

/// A user through `POST /api/v4/users`: its id and password.
async fn new_user(world: &World, username: &str) -> anyhow::Result<(i64, String)> {
    let password = format!(
        "bench-password-{}",
        secret::base64url(&secret::random_bytes::<9>())
    );
    let (parts, body) = seed::call(
        world.addr,
        seed::json_post(
            "/api/v4/users",
            &world.admin,
            &json!({
                "username": username,
                "email": format!("{username}@bench.example"),
                "name": username,
                "password": password,
            }),
        )?,
    )
    .await?;
    seed::expect(&parts, &body, StatusCode::CREATED, "POST /api/v4/users")?;
    let id = serde_json::from_slice::<Value>(&body)?["id"]
        .as_i64()
        .context("user without id")?;
    Ok((id, password))
}

/// A confidential application with the scopes `openid read_user`: its `client_id` and its
/// HTTP Basic credentials.
async fn new_application(world: &World) -> anyhow::Result<(String, HeaderValue)> {
    let (parts, body) = seed::call(
        world.addr,
        seed::json_post(
            "/api/v4/applications",
            &world.admin,
            &json!({
                "name": "bench group claims",
                "redirect_uri": REDIRECT_URI,
                "scopes": SCOPES,
                "confidential": true,
                "trusted": true,
            }),
        )?,
    )
    .await?;
    seed::expect(&parts, &body, StatusCode::OK, "POST /api/v4/applications")?;
    let app: Value = serde_json::from_slice(&body)?;
    let client_id = app["application_id"]
        .as_str()
        .context("application_id")?
        .to_string();
    let secret = app["secret"].as_str().context("secret")?;
    let basic = wl::basic(&client_id, secret);
    Ok((client_id, basic))
}

/// The median of `samples`, in microseconds.
fn median_us(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// The parts of each user's claims, timed in this process with the server idle, through
/// the `doorward` library on the same database (medians of `iterations`, in µs): the claims
/// query (`Store::group_claims`, as UserInfo and every id_token run it), UserInfo's JSON
/// (`user_claims` and `UserInfoGroupClaims`, serialised), and the id_token (its claims,
/// `groups_direct`, and the RS256 signature with an RSA 2048 key generated as Doorward
/// generates its default key).
async fn time_parts(
    runs: &Runs<'_>,
    issuer: &str,
    client_id: &str,
    users: &[&ClaimsUser],
    iterations: usize,
) -> anyhow::Result<Vec<Value>> {
    let store = Store::connect(
        runs.url,
        &StoreOptions {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(60),
        },
    )?;
    let pem = signing_keys::generate(Alg::Rs256)?;
    let key = SigningKey::from_pem(Alg::Rs256, &pem)?;
    let scopes = ScopeSet::parse(SCOPES).unwrap_or_default();
    let now = Clock::system().now();
    let sid = id_token::sid_of_chain(&[0; 16]);
    let mut out = Vec::new();
    for u in users {
        let user = store
            .user_by_id(u.id)
            .await?
            .context("the W8 user is gone")?;
        // This store has no cache: every call is the query.
        let mut read = None;
        let mut query = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            read = Some(store.group_claims(u.id, now).await?);
            query.push(t.elapsed());
        }
        let rows = read.map(|r| r.rows.clone()).unwrap_or_default();
        let mut userinfo = Vec::with_capacity(iterations);
        let mut userinfo_bytes = 0;
        for _ in 0..iterations {
            let t = Instant::now();
            let info = UserInfo {
                profile: user_claims(&user, &scopes, issuer),
                groups: UserInfoGroupClaims(&rows),
            };
            userinfo_bytes = serde_json::to_vec(&info)?.len();
            userinfo.push(t.elapsed());
        }
        let subject = Subject {
            user: &user,
            client_id,
            auth_time: now,
            nonce: None,
            browser_session: None,
        };
        let mut signed = Vec::with_capacity(iterations);
        let mut id_token_bytes = 0;
        for _ in 0..iterations {
            let t = Instant::now();
            let mut claims =
                id_token::claims(issuer, &subject, &scopes, &u.access[0], &sid, now, 120);
            claims.insert("groups_direct".into(), groups_direct(&rows));
            id_token_bytes = key.sign(&claims)?.len();
            signed.push(t.elapsed());
        }
        let parts = json!({
            "iterations": iterations,
            "claims_query_us": median_us(query),
            "claims_rows": rows.len(),
            "userinfo_json_us": median_us(userinfo),
            "userinfo_json_bytes": userinfo_bytes,
            "id_token_claims_and_rs256_us": median_us(signed),
            "id_token_bytes": id_token_bytes,
        });
        println!(
            "W8: {}, timed in this process (medians of {iterations}): claims query {:.0} µs ({} rows), UserInfo JSON {:.0} µs ({} bytes), id_token claims + RS256 {:.0} µs ({} bytes)",
            u.label,
            parts["claims_query_us"].as_f64().unwrap_or(0.0),
            rows.len(),
            parts["userinfo_json_us"].as_f64().unwrap_or(0.0),
            userinfo_bytes,
            parts["id_token_claims_and_rs256_us"]
                .as_f64()
                .unwrap_or(0.0),
            id_token_bytes,
        );
        out.push(parts);
    }
    store.close().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_is_direct_in_a_tenth_and_claims_nineteen_per_top_level_group() {
        let direct = memberships(100);
        assert_eq!(direct.len(), 1_000);
        let unique: std::collections::HashSet<_> = direct.iter().map(|(p, _)| p).collect();
        assert_eq!(unique.len(), 1_000);
        let claimed = Claimed::of(100, &direct);
        assert_eq!(claimed.groups, 1_900);
        assert_eq!(
            (claimed.owner, claimed.maintainer, claimed.developer),
            (200, 200, 200)
        );
        assert_eq!(PER_TOP * 100, 10_000);
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
