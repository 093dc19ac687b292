//! Error envelopes (parsing, classes, statuses, reset times), the exact error shapes the
//! gateway sends, and the HTTP-side encoders.

use serde_json::{Value, json};
use wsv2_core::StreamId;
use wsv2_core::event::{
    ErrorClass, gateway_error_event, http_error_body, invalid_stream_id_event, parse_error_event,
    previous_response_not_found_event, sse_encode, sse_flat_error,
    websocket_connection_limit_reached_event, websocket_stream_limit_reached_event,
};

fn envelope(status: Option<u16>, error: Value) -> Vec<u8> {
    let mut root = json!({"type": "error", "error": error});
    if let Some(status) = status {
        root["status"] = json!(status);
    }
    serde_json::to_vec(&root).unwrap()
}

/// (error object, expected class, status used when the envelope has none)
fn class_cases() -> Vec<(Value, ErrorClass, u16)> {
    use ErrorClass::*;
    vec![
        (
            json!({"type":"invalid_request_error","code":"previous_response_not_found","message":"x"}),
            PreviousResponseNotFound,
            400,
        ),
        (
            json!({"message":"Previous response with id 'resp_1' not found."}),
            PreviousResponseNotFound,
            400,
        ),
        (
            json!({"type":"invalid_request_error","code":"websocket_connection_limit_reached","message":"x"}),
            WebsocketConnectionLimitReached,
            400,
        ),
        (
            json!({"message":"Responses WebSocket connection limit reached (60 minutes)."}),
            WebsocketConnectionLimitReached,
            400,
        ),
        (
            json!({"type":"invalid_request_error","code":"websocket_stream_limit_reached","message":"x"}),
            WebsocketStreamLimitReached,
            400,
        ),
        (
            json!({"type":"invalid_request_error","code":"invalid_stream_id","message":"x"}),
            InvalidStreamId,
            400,
        ),
        (
            json!({"type":"usage_limit_reached","message":"The usage limit has been reached"}),
            RateLimited,
            429,
        ),
        (
            json!({"type":"rate_limit_error","message":"slow down"}),
            RateLimited,
            429,
        ),
        (
            json!({"code":"rate_limit_exceeded","message":"x"}),
            RateLimited,
            429,
        ),
        (
            json!({"code":"insufficient_quota","message":"x"}),
            RateLimited,
            429,
        ),
        (
            json!({"message":"Rate limit exceeded for requests"}),
            RateLimited,
            429,
        ),
        (json!({"message":"rate limit reached"}), RateLimited, 429),
        (
            json!({"code":"upgrade_required","message":"x"}),
            UpgradeRequired,
            426,
        ),
        (
            json!({"message":"unexpected status 426"}),
            UpgradeRequired,
            426,
        ),
        (
            json!({"code":"websocket_not_supported"}),
            WsUnsupported,
            400,
        ),
        (json!({"code":"websocket_unsupported"}), WsUnsupported, 400),
        (
            json!({"message":"WebSocket mode is unsupported for this model"}),
            WsUnsupported,
            400,
        ),
        (
            json!({"code":"invalid_encrypted_content","message":"x"}),
            InvalidEncryptedContent,
            400,
        ),
        (
            json!({"message":"The encrypted content could not be verified."}),
            InvalidEncryptedContent,
            400,
        ),
        (
            json!({"type":"server_error","message":"boom"}),
            ServerError,
            500,
        ),
        (json!({"code":"server_error"}), ServerError, 500),
        (
            json!({"code":"server_is_overloaded","message":"x"}),
            ServerError,
            500,
        ),
        (json!({"code":"slow_down"}), ServerError, 500),
        (
            json!({"type":"invalid_request_error","message":"Model does not support image inputs."}),
            Other,
            502,
        ),
        (json!({}), Other, 502),
    ]
}

#[test]
fn each_class_is_derived_and_fills_a_missing_status() {
    for (error, class, default_status) in class_cases() {
        let info = parse_error_event(&envelope(None, error.clone())).unwrap();
        assert_eq!(info.class, class, "{error}");
        assert_eq!(class.default_status(), default_status, "{class:?}");
        assert_eq!(info.status, default_status, "{error}");
        assert!(!info.status_in_envelope);
    }
}

#[test]
fn the_envelope_status_wins_over_the_class() {
    for (error, class, _) in class_cases() {
        let info = parse_error_event(&envelope(Some(418), error.clone())).unwrap();
        assert_eq!(
            (info.status, info.status_in_envelope, info.class),
            (418, true, class),
            "{error}"
        );
    }
    let alias = br#"{"type":"error","status_code":503,"error":{"code":"server_error"}}"#;
    let info = parse_error_event(alias).unwrap();
    assert_eq!((info.status, info.status_in_envelope), (503, true));
    let bogus = br#"{"type":"error","status":"400","error":{"code":"rate_limit_exceeded"}}"#;
    assert_eq!(
        parse_error_event(bogus).unwrap().status,
        429,
        "a non-numeric status is ignored"
    );
}

#[test]
fn envelope_fields_are_read() {
    let frame = br#"{"type":"error","status":400,"stream_id":"main","error":{"type":"invalid_request_error","code":"previous_response_not_found","message":"Previous response with id 'resp_abc' not found.","param":"previous_response_id"}}"#;
    let info = parse_error_event(frame).unwrap();
    assert_eq!(info.error_type.as_deref(), Some("invalid_request_error"));
    assert_eq!(info.code.as_deref(), Some("previous_response_not_found"));
    assert_eq!(
        info.message.as_deref(),
        Some("Previous response with id 'resp_abc' not found.")
    );
    assert_eq!(info.param.as_deref(), Some("previous_response_id"));
    let nulls = br#"{"type":"error","error":{"type":"x","code":null,"message":"m","param":null}}"#;
    let info = parse_error_event(nulls).unwrap();
    assert_eq!((info.code, info.param), (None, None));
    assert!(parse_error_event(b"not json").is_none());
    assert!(parse_error_event(b"[1]").is_none());
}

#[test]
fn headers_come_from_both_places_with_lower_case_names() {
    let frame = br#"{"type":"error","status":429,"error":{"type":"usage_limit_reached","headers":{"Retry-After":"7"}},"headers":{"X-Codex-Primary-Used-Percent":"100.0","x-n":5}}"#;
    let info = parse_error_event(frame).unwrap();
    assert_eq!(info.header("retry-after"), Some("7"));
    assert_eq!(info.header("x-codex-primary-used-percent"), Some("100.0"));
    assert_eq!(info.header("x-n"), Some("5"));
    assert_eq!(info.retry_after_secs(), Some(7));
}

fn with_headers(headers: Value, extra: Value) -> Option<u64> {
    let mut error = json!({"type": "rate_limit_error", "headers": headers});
    if let (Some(error), Some(extra)) = (error.as_object_mut(), extra.as_object()) {
        error.extend(extra.clone());
    }
    parse_error_event(&envelope(Some(429), error))
        .unwrap()
        .retry_after_secs()
}

#[test]
fn retry_after_reads_every_source_and_rounds_up() {
    assert_eq!(
        with_headers(json!({"retry-after": "12"}), json!({})),
        Some(12)
    );
    assert_eq!(
        with_headers(json!({"retry-after": "1.2"}), json!({})),
        Some(2)
    );
    assert_eq!(
        with_headers(json!({"x-ratelimit-reset-requests": "1s"}), json!({})),
        Some(1)
    );
    assert_eq!(
        with_headers(json!({"x-ratelimit-reset-requests": "6m0s"}), json!({})),
        Some(360)
    );
    assert_eq!(
        with_headers(json!({"x-ratelimit-reset-tokens": "250ms"}), json!({})),
        Some(1)
    );
    assert_eq!(
        with_headers(json!({"x-ratelimit-reset-tokens": "1h2m3.5s"}), json!({})),
        Some(3724)
    );
    assert_eq!(
        with_headers(
            json!({"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "1m"}),
            json!({})
        ),
        Some(60),
        "the longer reset wins"
    );
    assert_eq!(
        with_headers(json!({"x-ratelimit-reset-tokens": "soon"}), json!({})),
        None
    );
    assert_eq!(
        with_headers(json!({}), json!({"resets_in_seconds": 90})),
        Some(90)
    );
    assert_eq!(
        with_headers(
            json!({"retry-after": "3"}),
            json!({"resets_in_seconds": 90})
        ),
        Some(3),
        "retry-after has precedence"
    );
    assert_eq!(with_headers(json!({}), json!({})), None);
}

/// Found by fuzzing (`tests/fuzz/regressions/events/retry_after_1e300`): a hint too large for a
/// deadline (`retry-after: 1e300` saturated to `u64::MAX` s) made the scheduler's `now + hint`
/// panic, taking the control plane down with one upstream frame. Such a hint is no hint.
#[test]
fn a_reset_hint_too_large_for_a_deadline_is_ignored() {
    let huge = [
        (json!({"retry-after": "1e300"}), json!({})),
        (json!({"retry-after": "18446744073709551615"}), json!({})),
        (
            json!({"x-ratelimit-reset-requests": "9999999999999999999999h"}),
            json!({}),
        ),
        (
            json!({"x-codex-primary-reset-after-seconds": "1e30"}),
            json!({}),
        ),
        (json!({}), json!({"resets_in_seconds": 1e300})),
        (json!({}), json!({"resets_in_seconds": u64::MAX})),
    ];
    for (headers, extra) in huge {
        assert_eq!(
            with_headers(headers.clone(), extra.clone()),
            None,
            "{headers} {extra}"
        );
    }
    assert_eq!(
        with_headers(
            json!({"retry-after": "1e300"}),
            json!({"resets_in_seconds": 90})
        ),
        Some(90),
        "the next source still counts"
    );
    let longest = u64::from(u32::MAX);
    assert_eq!(
        with_headers(json!({"retry-after": longest.to_string()}), json!({})),
        Some(longest),
        "the longest hint accepted"
    );
}

#[test]
fn codex_windows_use_the_exhausted_one() {
    let headers = json!({
        "x-codex-primary-used-percent": "100.0", "x-codex-primary-reset-after-seconds": "600",
        "x-codex-secondary-used-percent": "40", "x-codex-secondary-reset-after-seconds": "86400",
    });
    assert_eq!(with_headers(headers, json!({})), Some(600));
    let weekly = json!({
        "x-codex-primary-used-percent": "20", "x-codex-primary-reset-after-seconds": "600",
        "x-codex-secondary-used-percent": "100", "x-codex-secondary-reset-after-seconds": "86400",
    });
    assert_eq!(with_headers(weekly, json!({})), Some(86400));
    let unknown_usage = json!({"x-codex-primary-reset-after-seconds": "600", "x-codex-secondary-reset-after-seconds": "900"});
    assert_eq!(with_headers(unknown_usage, json!({})), Some(600));
}

#[test]
fn resets_at_is_exposed_as_an_absolute_time() {
    let frame = br#"{"type":"error","status":429,"error":{"type":"usage_limit_reached","resets_at":1790000000}}"#;
    let info = parse_error_event(frame).unwrap();
    assert_eq!(info.resets_at, Some(1_790_000_000));
    assert_eq!(
        info.retry_after_secs(),
        None,
        "no clock: the caller converts resets_at"
    );
}

// ---- exact shapes (protocol.md §4.4, verbatim, whitespace removed) ----

fn assert_exact(actual: &[u8], expected: &str) {
    assert_eq!(std::str::from_utf8(actual).unwrap(), expected);
    serde_json::from_slice::<Value>(actual).expect("valid JSON");
}

#[test]
fn previous_response_not_found_matches_upstream() {
    let main = StreamId::from_str_copy("main").unwrap();
    assert_exact(
        &previous_response_not_found_event("resp_abc", Some(&main)),
        r#"{"type":"error","status":400,"stream_id":"main","error":{"type":"invalid_request_error","code":"previous_response_not_found","message":"Previous response with id 'resp_abc' not found.","param":"previous_response_id"}}"#,
    );
    assert_exact(
        &previous_response_not_found_event("resp_abc", None),
        r#"{"type":"error","status":400,"error":{"type":"invalid_request_error","code":"previous_response_not_found","message":"Previous response with id 'resp_abc' not found.","param":"previous_response_id"}}"#,
    );
    let hostile = previous_response_not_found_event("x\"}\n", None);
    let value: Value = serde_json::from_slice(&hostile).unwrap();
    assert_eq!(
        value["error"]["message"],
        "Previous response with id 'x\"}\n' not found."
    );
    let info = parse_error_event(&hostile).unwrap();
    assert_eq!(
        (info.class, info.status),
        (ErrorClass::PreviousResponseNotFound, 400)
    );
}

#[test]
fn invalid_stream_id_matches_upstream() {
    assert_exact(
        &invalid_stream_id_event(),
        r#"{"type":"error","status":400,"error":{"type":"invalid_request_error","code":"invalid_stream_id","message":"The 'stream_id' field must be a non-empty string with at most 256 characters and may only contain letters, numbers, underscores, hyphens, and periods.","param":"stream_id"}}"#,
    );
}

#[test]
fn websocket_stream_limit_reached_matches_upstream() {
    let lane = StreamId::from_str_copy("agent_33").unwrap();
    assert_exact(
        &websocket_stream_limit_reached_event(&lane),
        r#"{"type":"error","status":400,"stream_id":"agent_33","error":{"type":"invalid_request_error","code":"websocket_stream_limit_reached","message":"This WebSocket connection has reached its maximum number of distinct stream IDs (32). Reuse an existing stream_id or open a new WebSocket connection.","param":"stream_id"}}"#,
    );
}

#[test]
fn websocket_connection_limit_reached_matches_upstream_with_status_last() {
    let event = websocket_connection_limit_reached_event(None);
    assert_exact(
        &event,
        r#"{"type":"error","error":{"type":"invalid_request_error","code":"websocket_connection_limit_reached","message":"Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue."},"status":400}"#,
    );
    let info = parse_error_event(&event).unwrap();
    assert_eq!(
        (info.class, info.status, info.status_in_envelope),
        (ErrorClass::WebsocketConnectionLimitReached, 400, true)
    );
}

#[test]
fn gateway_errors_have_the_envelope_shape() {
    let lane = StreamId::from_str_copy("l1").unwrap();
    assert_exact(
        &gateway_error_event(
            429,
            "rate_limit_error",
            Some("too_many_held_creates"),
            "Too many \"queued\" creates",
            None,
            Some(&lane),
        ),
        r#"{"type":"error","status":429,"stream_id":"l1","error":{"type":"rate_limit_error","code":"too_many_held_creates","message":"Too many \"queued\" creates","param":null}}"#,
    );
    assert_exact(
        &gateway_error_event(400, "invalid_request_error", None, "bad", None, None),
        r#"{"type":"error","status":400,"error":{"type":"invalid_request_error","code":null,"message":"bad","param":null}}"#,
    );
}

// ---- HTTP side ----

#[test]
fn sse_frames_one_event() {
    assert_eq!(
        &sse_encode("response.output_text.delta", br#"{"a":1}"#)[..],
        b"event: response.output_text.delta\ndata: {\"a\":1}\n\n"
    );
    assert_eq!(
        &sse_encode("x", b"{\n  \"a\": 1\r\n}")[..],
        b"event: x\ndata: {\ndata:   \"a\": 1\ndata: }\n\n",
        "pretty JSON becomes several data lines"
    );
    assert_eq!(
        &sse_encode("evil\ntype", b"{}")[..],
        b"event: eviltype\ndata: {}\n\n"
    );
}

#[test]
fn the_flat_sse_error_is_built_from_the_envelope() {
    let ws = br#"{"type":"error","status":400,"sequence_number":4,"error":{"type":"invalid_request_error","code":"bad_thing","message":"Bad \"thing\"","param":"input"}}"#;
    assert_eq!(
        std::str::from_utf8(&sse_flat_error(ws)).unwrap(),
        "event: error\ndata: {\"type\":\"error\",\"code\":\"bad_thing\",\"message\":\"Bad \\\"thing\\\"\",\"param\":\"input\",\"sequence_number\":4}\n\n"
    );
    let without_seq =
        br#"{"type":"error","status":500,"error":{"type":"server_error","message":"boom"}}"#;
    let out = sse_flat_error(without_seq);
    let data = out
        .strip_prefix(b"event: error\ndata: ")
        .unwrap()
        .strip_suffix(b"\n\n")
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(data).unwrap(),
        json!({"type":"error","code":null,"message":"boom","param":null})
    );
    let garbage = sse_flat_error(b"{oops");
    assert!(garbage.starts_with(b"event: error\ndata: {\"type\":\"error\",\"code\":null,"));
}

#[test]
fn the_http_error_body_has_openais_shape() {
    assert_exact(
        &http_error_body(
            "invalid_request_error",
            Some("model_not_found"),
            "No \"such\" model",
            Some("model"),
        ),
        r#"{"error":{"message":"No \"such\" model","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#,
    );
    assert_exact(
        &http_error_body("server_error", None, "x", None),
        r#"{"error":{"message":"x","type":"server_error","param":null,"code":null}}"#,
    );
}
