//! The official MCP Python SDK (`mcp` 2.x), unchanged, against Doorward: its
//! `OAuthClientProvider` discovers Doorward from an MCP server's RFC 9728 metadata,
//! registers (RFC 7591), signs in and consents, and gets a token bound to the MCP server
//! (RFC 8707); its `MCPServer` verifies that token by Doorward's introspection with an
//! administrator's confidential application. The script also checks that the same token
//! is refused by Doorward's own API. See tests/python/mcp_flow.py.

use std::process::Command;

use crate::both_backends;
use crate::python_clients::python;
use crate::support::ROOT_PASSWORD;
use crate::support::oauth::{AppSpec, register};

both_backends! {
    async fn the_mcp_python_sdk_authorizes_against_doorward(app: TestApp) {
        // The MCP server's introspection credentials: an instance application.
        let server = register(&app, AppSpec { owner: None, scopes: "read_user", ..AppSpec::default() }).await;
        let base = app.base.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(python())
                .arg(format!("{}/tests/python/mcp_flow.py", env!("CARGO_MANIFEST_DIR")))
                .env("DOORWARD_URL", &base)
                .env("DOORWARD_USERNAME", "root")
                .env("DOORWARD_PASSWORD", ROOT_PASSWORD)
                .env("DOORWARD_INTROSPECT_CLIENT_ID", &server.client_id)
                .env("DOORWARD_INTROSPECT_CLIENT_SECRET", &server.secret)
                .output()
                .expect("run python")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "mcp_flow.py failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{stdout}");
        // The SDK registered one client dynamically, and it is marked as such.
        let (dynamic, _) = app.state.store.instance_applications(true, 10, 0).await.unwrap();
        assert_eq!(dynamic.len(), 1);
        assert!(stdout.contains(&dynamic[0].uid), "the summary names the registered client");
    }
}
