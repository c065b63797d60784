//! GitLab's groups and members API through HTTP, on both backends: the entity shapes,
//! nesting and moves, the permission rules, visibility, the list filters, and bad input.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::TestApp;

/// A caller of the API with one personal access token.
pub struct Api<'a> {
    pub app: &'a TestApp,
    pub token: Option<String>,
}

impl<'a> Api<'a> {
    pub async fn of(app: &'a TestApp, username: &str, scopes: &str) -> Api<'a> {
        Api {
            app,
            token: Some(app.token_for(username, scopes).await),
        }
    }

    pub fn anonymous(app: &'a TestApp) -> Api<'a> {
        Api { app, token: None }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req =
            reqwest::Client::new().request(method, self.app.url(&format!("/api/v4{path}")));
        if let Some(t) = &self.token {
            req = req.header("PRIVATE-TOKEN", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a group (under `parent`), asserting 201; its JSON.
    pub async fn group(&self, path: &str, parent: Option<i64>, visibility: &str) -> Value {
        let (status, body) = self
            .post("/groups", json!({"name": path.to_uppercase(), "path": path, "parent_id": parent, "visibility": visibility}))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn add_member(&self, group: i64, user: i64, level: i64) -> (u16, Value) {
        self.post(
            &format!("/groups/{group}/members"),
            json!({"user_id": user, "access_level": level}),
        )
        .await
    }
}

fn paths(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|g| g["full_path"].as_str().unwrap().to_string())
        .collect()
}

both_backends! {
    async fn groups_nest_move_and_carry_gitlabs_entity(app: TestApp) {
        let root = Api::of(&app, "root", "api").await;
        let acme = root.group("acme", None, "private").await;
        for key in ["id", "name", "path", "full_path", "description", "visibility", "created_at", "web_url", "parent_id"] {
            assert!(acme.get(key).is_some(), "{key} in {acme}");
        }
        assert_eq!(acme["visibility"], "private");
        assert_eq!(acme["parent_id"], Value::Null);
        assert_eq!(acme["web_url"], format!("{}/groups/acme", app.base));
        let acme_id = acme["id"].as_i64().unwrap();
        let infra = root.group("infra", Some(acme_id), "private").await;
        assert_eq!(infra["full_path"], "acme/infra");
        assert_eq!(infra["parent_id"], acme_id);
        let oncall = root.group("oncall", Some(infra["id"].as_i64().unwrap()), "private").await;
        assert_eq!(oncall["full_path"], "acme/infra/oncall");

        // The creator is the direct Owner.
        let (_, members) = root.get(&format!("/groups/{acme_id}/members")).await;
        assert_eq!(members[0]["username"], "root");
        assert_eq!(members[0]["access_level"], 50);

        // `:id` as a number or a %2F-encoded full path.
        let (status, by_path) = root.get("/groups/acme%2Finfra%2Foncall").await;
        assert_eq!(status, 200);
        assert_eq!(by_path["id"], oncall["id"]);

        // Renaming a path moves every descendant's full path.
        let (status, renamed) = root.put(&format!("/groups/{acme_id}"), json!({"path": "acme-corp", "description": "The company"})).await;
        assert_eq!(status, 200, "{renamed}");
        assert_eq!(renamed["full_path"], "acme-corp");
        assert_eq!(renamed["description"], "The company");
        let (_, moved) = root.get(&format!("/groups/{}", oncall["id"])).await;
        assert_eq!(moved["full_path"], "acme-corp/infra/oncall");

        // Transfer to the top level and back under another group; cycles refused.
        let other = root.group("other", None, "private").await;
        let (status, top) = root.post(&format!("/groups/{}/transfer", infra["id"]), json!({})).await;
        assert_eq!(status, 201, "{top}");
        assert_eq!(top["full_path"], "infra");
        assert_eq!(top["parent_id"], Value::Null);
        let (_, moved) = root.get(&format!("/groups/{}", oncall["id"])).await;
        assert_eq!(moved["full_path"], "infra/oncall");
        let (status, under) = root.post(&format!("/groups/{}/transfer", infra["id"]), json!({"group_id": other["id"]})).await;
        assert_eq!(status, 201, "{under}");
        assert_eq!(under["full_path"], "other/infra");
        let (status, _) = root.post(&format!("/groups/{}/transfer", other["id"]), json!({"group_id": oncall["id"]})).await;
        assert_eq!(status, 400, "a group cannot move under its own descendant");
        let (status, _) = root.put(&format!("/groups/{}", other["id"]), json!({"parent_id": other["id"]})).await;
        assert_eq!(status, 400, "nor under itself");

        // Subgroups and descendants.
        let (_, subgroups) = root.get(&format!("/groups/{}/subgroups", other["id"])).await;
        assert_eq!(paths(&subgroups), ["other/infra"]);
        let (_, descendants) = root.get(&format!("/groups/{}/descendant_groups", other["id"])).await;
        assert_eq!(paths(&descendants), ["other/infra", "other/infra/oncall"]);

        // Delete takes the subgroups and memberships along; 202 as GitLab.
        let before = app.state.store.count_rows("group_members").await.unwrap();
        let (status, _) = root.delete(&format!("/groups/{}", other["id"])).await;
        assert_eq!(status, 202);
        assert_eq!(root.get(&format!("/groups/{}", oncall["id"])).await.0, 404);
        assert_eq!(app.state.store.count_rows("group_members").await.unwrap(), before - 3);
        assert_eq!(app.state.store.count_rows("group_closure").await.unwrap(), 1, "only acme-corp's own row");
    }

    async fn paths_names_depth_and_visibility_are_checked(app: TestApp) {
        let root = Api::of(&app, "root", "api").await;
        for path in ["api", "oauth", "users", "admin", "dashboard", "groups", "explore", "help", "-", "bad path", "a.git", "-x", ""] {
            let (status, body) = root.post("/groups", json!({"name": "X", "path": path})).await;
            assert_eq!(status, 400, "{path:?}: {body}");
        }
        let (status, body) = root.post("/groups", json!({"name": "<b>Bold</b>", "path": "bold"})).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = root.post("/groups", json!({"name": "X", "path": "x", "visibility": "secret"})).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = root.post("/groups", json!({"path": "x"})).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(app.state.store.count_rows("groups").await.unwrap(), 0, "nothing half-written");

        let top = root.group("top", None, "internal").await;
        // Unique per parent, case-insensitively; the same path elsewhere is fine.
        let (status, body) = root.post("/groups", json!({"name": "Top", "path": "TOP"})).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"]["path"][0].as_str().unwrap().contains("taken"), "{body}");
        let api = root.group("api", Some(top["id"].as_i64().unwrap()), "private").await;
        assert_eq!(api["full_path"], "top/api", "reserved names are only reserved at the top");
        // A subgroup no more visible than its parent, a parent no less than its subgroups.
        let (status, _) = root.post("/groups", json!({"name": "P", "path": "p", "parent_id": top["id"], "visibility": "public"})).await;
        assert_eq!(status, 400);
        root.group("inner", Some(top["id"].as_i64().unwrap()), "internal").await;
        let (status, _) = root.put(&format!("/groups/{}", top["id"]), json!({"visibility": "private"})).await;
        assert_eq!(status, 400);

        // Twenty levels deep at most.
        let mut parent = top["id"].as_i64().unwrap();
        for depth in 2..=20 {
            parent = root.group(&format!("l{depth}"), Some(parent), "private").await["id"].as_i64().unwrap();
        }
        let (status, body) = root.post("/groups", json!({"name": "Deep", "path": "l21", "parent_id": parent})).await;
        assert_eq!(status, 400, "{body}");
        // Moving a subtree where it would end deeper than 20 is refused too.
        let two = root.group("two", None, "private").await;
        root.group("child", Some(two["id"].as_i64().unwrap()), "private").await;
        let (status, _) = root.post(&format!("/groups/{}/transfer", two["id"]), json!({"group_id": parent})).await;
        assert_eq!(status, 400);
    }

    async fn members_follow_gitlabs_permission_rules(app: TestApp) {
        let ids: Vec<i64> = {
            let mut v = Vec::new();
            for name in ["olga", "max", "dev", "gus", "eve"] {
                v.push(app.create_user(name, &format!("{name}-password-1")).await["id"].as_i64().unwrap());
            }
            v
        };
        let (olga, max, dev, gus, eve) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
        let olga_api = Api::of(&app, "olga", "api").await;
        let acme = olga_api.group("acme", None, "private").await;
        let g = acme["id"].as_i64().unwrap();
        let sub = olga_api.group("infra", Some(g), "private").await;
        let s = sub["id"].as_i64().unwrap();

        assert_eq!(olga_api.add_member(g, max, 40).await.0, 201);
        assert_eq!(olga_api.add_member(g, dev, 30).await.0, 201);
        let (status, body) = olga_api.add_member(g, dev, 30).await;
        assert_eq!(status, 409, "{body}");
        for level in [0, 15, 60, -1] {
            assert_eq!(olga_api.add_member(g, gus, level).await.0, 400, "level {level}");
        }
        assert_eq!(olga_api.add_member(g, 999_999, 10).await.0, 404);

        // A Maintainer adds up to Maintainer, never an Owner, never touches an Owner.
        let max_api = Api::of(&app, "max", "api").await;
        assert_eq!(max_api.add_member(g, gus, 50).await.0, 403);
        assert_eq!(max_api.add_member(g, gus, 40).await.0, 201);
        assert_eq!(max_api.put(&format!("/groups/{g}/members/{olga}"), json!({"access_level": 10})).await.0, 403);
        assert_eq!(max_api.delete(&format!("/groups/{g}/members/{olga}")).await.0, 403);
        assert_eq!(max_api.put(&format!("/groups/{g}/members/{gus}"), json!({"access_level": 20})).await.0, 200);
        // A Maintainer cannot edit, transfer or delete the group.
        assert_eq!(max_api.put(&format!("/groups/{g}"), json!({"name": "Mine"})).await.0, 403);
        assert_eq!(max_api.delete(&format!("/groups/{g}")).await.0, 403);
        assert_eq!(max_api.post(&format!("/groups/{g}/transfer"), json!({})).await.0, 403);

        // A Developer touches no membership; a non-member sees nothing of a private group.
        let dev_api = Api::of(&app, "dev", "api").await;
        assert_eq!(dev_api.add_member(g, eve, 10).await.0, 403);
        let eve_api = Api::of(&app, "eve", "api").await;
        assert_eq!(eve_api.get(&format!("/groups/{g}")).await.0, 404);
        assert_eq!(eve_api.get(&format!("/groups/{s}")).await.0, 404);
        assert_eq!(eve_api.get(&format!("/groups/{g}/members")).await.0, 404);
        assert_eq!(eve_api.delete(&format!("/groups/{g}")).await.0, 404);
        assert_eq!(eve_api.add_member(g, eve, 10).await.0, 404);
        assert_eq!(Api::anonymous(&app).get(&format!("/groups/{g}")).await.0, 404);

        // Inherited: members of acme are members of acme/infra, at least at that level.
        assert_eq!(dev_api.get(&format!("/groups/{s}")).await.0, 200);
        assert_eq!(olga_api.add_member(s, dev, 40).await.0, 201);
        let (_, all) = olga_api.get(&format!("/groups/{s}/members/all")).await;
        let level_of = |id: i64| all.as_array().unwrap().iter().find(|m| m["id"] == id).map(|m| m["access_level"].as_i64().unwrap());
        assert_eq!(level_of(olga), Some(50));
        assert_eq!(level_of(max), Some(40));
        assert_eq!(level_of(dev), Some(40), "the higher of direct 40 and inherited 30");
        assert_eq!(level_of(eve), None);
        let (_, direct) = olga_api.get(&format!("/groups/{s}/members")).await;
        assert_eq!(direct.as_array().unwrap().len(), 2, "olga (creator) and dev");
        let (status, one) = olga_api.get(&format!("/groups/{s}/members/all/{max}")).await;
        assert_eq!((status, one["access_level"].as_i64()), (200, Some(40)));
        assert_eq!(olga_api.get(&format!("/groups/{s}/members/{max}")).await.0, 404);

        // Owners may add Owners; the last Owner cannot leave or be demoted.
        assert_eq!(olga_api.put(&format!("/groups/{g}/members/{olga}"), json!({"access_level": 40})).await.0, 403);
        assert_eq!(olga_api.delete(&format!("/groups/{g}/members/{olga}")).await.0, 403);
        assert_eq!(olga_api.add_member(g, eve, 50).await.0, 201);
        assert_eq!(olga_api.delete(&format!("/groups/{g}/members/{olga}")).await.0, 204, "leaves while eve owns it");
        assert_eq!(olga_api.delete(&format!("/groups/{g}/members/{olga}")).await.0, 404);
        // Anyone may leave: the developer removes themselves.
        assert_eq!(dev_api.delete(&format!("/groups/{g}/members/{dev}")).await.0, 204);

        // Expiry: a date, today allowed, the past refused; shown as YYYY-MM-DD.
        let today = doorward::domain::clock::date(app.clock.now());
        let (status, m) = eve_api.put(&format!("/groups/{g}/members/{gus}"), json!({"expires_at": today})).await;
        assert_eq!(status, 200, "{m}");
        assert_eq!(m["expires_at"], today);
        assert_eq!(eve_api.put(&format!("/groups/{g}/members/{gus}"), json!({"expires_at": "2001-01-01"})).await.0, 400);
        assert_eq!(eve_api.put(&format!("/groups/{g}/members/{gus}"), json!({"expires_at": "tomorrow"})).await.0, 400);

        // Admins only: a user's direct memberships.
        let root = Api::of(&app, "root", "api").await;
        let (status, memberships) = root.get(&format!("/users/{max}/memberships")).await;
        assert_eq!(status, 200);
        assert_eq!(memberships, json!([{"source_id": g, "source_name": "ACME", "source_type": "Namespace", "access_level": 40}]));
        assert_eq!(max_api.get(&format!("/users/{max}/memberships")).await.0, 403);
    }

    async fn group_lists_filter_as_gitlabs_groups_finder(app: TestApp) {
        let ana = app.create_user("ana", "ana-password-1").await["id"].as_i64().unwrap();
        let root = Api::of(&app, "root", "api").await;
        let acme = root.group("acme", None, "private").await["id"].as_i64().unwrap();
        let infra = root.group("infra", Some(acme), "private").await["id"].as_i64().unwrap();
        root.group("oncall", Some(infra), "private").await;
        let beta = root.group("beta", None, "private").await["id"].as_i64().unwrap();
        root.group("internal-one", None, "internal").await;
        root.group("public-one", None, "public").await;
        root.group("zeta", None, "private").await;
        assert_eq!(root.add_member(acme, ana, 10).await.0, 201);
        assert_eq!(root.add_member(infra, ana, 30).await.0, 201);
        assert_eq!(root.add_member(beta, ana, 50).await.0, 201);

        let ana_api = Api::of(&app, "ana", "read_api").await;
        let (status, mine) = ana_api.get("/groups").await;
        assert_eq!(status, 200);
        // Ordered by name (ACME, BETA, INFRA, ONCALL), inherited memberships included.
        assert_eq!(paths(&mine), ["acme", "beta", "acme/infra", "acme/infra/oncall"]);
        let (_, owned) = ana_api.get("/groups?owned=true").await;
        assert_eq!(paths(&owned), ["beta"]);
        let (_, dev_and_up) = ana_api.get("/groups?min_access_level=30").await;
        let mut got = paths(&dev_and_up);
        got.sort();
        assert_eq!(got, ["acme/infra", "acme/infra/oncall", "beta"]);
        let (_, top) = ana_api.get("/groups?top_level_only=True").await;
        let mut got = paths(&top);
        got.sort();
        assert_eq!(got, ["acme", "beta"]);
        let (_, all) = ana_api.get("/groups?all_available=true").await;
        let got = paths(&all);
        assert!(got.contains(&"internal-one".to_string()) && got.contains(&"public-one".to_string()));
        assert!(!got.contains(&"zeta".to_string()));
        let (_, found) = ana_api.get("/groups?search=ONC").await;
        assert_eq!(paths(&found), ["acme/infra/oncall"]);
        // Ordered by name by default; path and id on request, in either direction.
        let (_, by_path) = root.get("/groups?order_by=path&sort=desc&per_page=2").await;
        assert_eq!(paths(&by_path), ["zeta", "public-one"]);
        let res = reqwest::Client::new()
            .get(app.url("/api/v4/groups?order_by=id&per_page=2&page=2"))
            .header("PRIVATE-TOKEN", root.token.as_ref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-total"], "7");
        assert_eq!(res.headers()["x-page"], "2");
        assert!(res.headers()["link"].to_str().unwrap().contains("rel=\"next\""));
        assert_eq!(root.get("/groups?order_by=stars").await.0, 400);
        assert_eq!(root.get("/groups?min_access_level=15").await.0, 400);

        // Anonymous: public groups only; internal ones need a signed-in caller.
        let anonymous = Api::anonymous(&app);
        let (status, public) = anonymous.get("/groups").await;
        assert_eq!(status, 200);
        assert_eq!(paths(&public), ["public-one"]);
        let internal = root.get("/groups?search=internal").await.1[0]["id"].as_i64().unwrap();
        assert_eq!(anonymous.get(&format!("/groups/{internal}")).await.0, 404);
        assert_eq!(ana_api.get(&format!("/groups/{internal}")).await.0, 200);

        // Reading needs read_api (or api); writing needs api.
        let read_user = Api::of(&app, "ana", "read_user").await;
        assert_eq!(read_user.get("/groups").await.0, 403);
        assert_eq!(ana_api.post("/groups", json!({"name": "N", "path": "n"})).await.0, 403);
    }
}
