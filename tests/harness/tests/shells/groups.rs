//! Groups isolate responses: a key of one group never continues, by id, a response that a key
//! of another group created — on a socket's first create, on a later one, over POST, and
//! across gateways sharing Redis — while the creating group continues it anywhere.

use serde_json::{Value, json};
use wsv2_core::file_config::{GatewayConfig, Secret};
use wsv2_tests::client::{Credentials, WsClient};
use wsv2_tests::sse::SseClient;

use crate::support::Shell;
use crate::support::common::{CLIENT_KEY, Setup};
use crate::support::http::{base, binding_written, random_group, redis_url};

shell_tests! {
    a_key_of_another_group_cannot_continue_a_response_by_id,
    across_gateways_sharing_redis_a_response_stays_in_its_group,
}

/// The second client key, in its own group
const OTHER_KEY: &str = "sk-gw-other-group";

/// `CLIENT_KEY` in `group_a`, [`OTHER_KEY`] in `group_b`
fn two_groups(c: &mut GatewayConfig, group_a: &str, group_b: &str) {
    c.client_keys[0].group = group_a.to_owned();
    let mut other = c.client_keys[0].clone();
    other.key = Secret::new(OTHER_KEY);
    other.group = group_b.to_owned();
    c.client_keys.push(other);
}

fn create(previous: Option<&str>) -> Value {
    let mut v = json!({"type": "response.create", "model": "gpt-5", "input": "hi", "store": true});
    if let Some(p) = previous {
        v["previous_response_id"] = json!(p);
    }
    v
}

/// Sends `create` and reads its turn: the terminal's response id, or the `error` code
async fn turn(ws: &mut WsClient, create: &Value) -> Result<String, String> {
    ws.send_json(create).await.unwrap();
    let turn = ws.read_turn().await.unwrap();
    let last = turn.events.last().unwrap().clone();
    match last["type"].as_str() {
        Some("response.completed") => Ok(last["response"]["id"].as_str().unwrap().to_owned()),
        _ => Err(last["error"]["code"].as_str().unwrap_or("?").to_owned()),
    }
}

async fn post_continuation(http_base: &str, key: &str, previous: &str) -> (u16, String) {
    let body =
        json!({"model": "gpt-5", "input": "hi", "stream": false, "previous_response_id": previous});
    let answer = SseClient::new()
        .post(http_base, &Credentials::bearer(key), &body)
        .await
        .expect("POST");
    let status = answer.status();
    (status, answer.text().await.unwrap())
}

async fn a_key_of_another_group_cannot_continue_a_response_by_id(shell: Shell) {
    let setup = Setup::new(shell, |c| two_groups(c, "team-a", "team-b")).await;
    let mut a = setup.client().await;
    let id = turn(&mut a, &create(None)).await.expect("completed");
    let creates = setup.frames().len();

    // The first create of a team-b socket, then a later one after a turn of its own.
    let mut b = setup.client_with(Credentials::bearer(OTHER_KEY)).await;
    let refused = Err("previous_response_not_found".to_owned());
    assert_eq!(turn(&mut b, &create(Some(&id))).await, refused);
    let own = turn(&mut b, &create(None)).await.expect("its own turn");
    assert_eq!(turn(&mut b, &create(Some(&id))).await, refused);
    // POST, the same answer.
    let (status, text) = post_continuation(&base(setup.gateway.addr), OTHER_KEY, &id).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("previous_response_not_found"), "{text}");
    assert_eq!(
        setup.frames().len(),
        creates + 1,
        "only team-b's own turn reached upstream"
    );

    // team-b continues its own chain; team-a continues its response on another socket.
    assert!(turn(&mut b, &create(Some(&own))).await.is_ok());
    let mut a2 = setup.client().await;
    assert!(turn(&mut a2, &create(None)).await.is_ok());
    assert!(
        turn(&mut a2, &create(Some(&id))).await.is_ok(),
        "a later create"
    );
    let mut a3 = setup.client().await;
    assert!(
        turn(&mut a3, &create(Some(&id))).await.is_ok(),
        "a first create"
    );
}

async fn across_gateways_sharing_redis_a_response_stays_in_its_group(shell: Shell) {
    let url = redis_url();
    let (team_a, team_b) = (
        random_group(&format!("iso-a-{shell}")),
        random_group(&format!("iso-b-{shell}")),
    );
    let with_redis = |c: &mut GatewayConfig| {
        two_groups(c, &team_a, &team_b);
        c.redis_url = Some(Secret::new(url.clone()));
    };
    let first = Setup::new(shell, with_redis).await;
    let second = shell
        .start({
            let mut c =
                GatewayConfig::demo(&first.mock.ws_url(), crate::support::common::UPSTREAM_KEY)
                    .expect("config");
            with_redis(&mut c);
            c
        })
        .await
        .expect("second gateway");
    let mut a = first.client().await;
    let id = turn(&mut a, &create(None)).await.expect("completed");
    let value = binding_written(&url, &id).await;
    assert_eq!(value, format!("1:{team_a}"), "the record names the group");
    let creates = first.frames().len();

    let mut b = WsClient::connect(&second.ws_url(), &Credentials::bearer(OTHER_KEY))
        .await
        .unwrap();
    let refused = Err("previous_response_not_found".to_owned());
    assert_eq!(turn(&mut b, &create(Some(&id))).await, refused);
    let (status, text) = post_continuation(&base(second.addr), OTHER_KEY, &id).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(first.frames().len(), creates, "nothing reached upstream");

    let mut a2 = WsClient::connect(&second.ws_url(), &Credentials::bearer(CLIENT_KEY))
        .await
        .unwrap();
    assert!(turn(&mut a2, &create(Some(&id))).await.is_ok());
}
